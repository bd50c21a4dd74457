/**
 * Region matching for `cheapest`. A requested region matches an offer when it is
 *   1. the offer's region or zone, case-insensitively ("us-east-1", "europe-west4-a", "nbg1");
 *   2. a prefix of the region ending at a boundary ('-', a digit when the prefix does not end in one, or a prefix
 *      that itself ends in '-', such as "eu-"): "us-east" matches "us-east-1" and
 *      "us-east1", "europe-west" matches "europe-west4", but "ca" does not match "canadacentral" and "europe-west1"
 *      does not match "europe-west10";
 *   3. a continent alias — eu/europe, na/north-america/us/americas, sa/south-america/latam, asia/ap/apac,
 *      oc/oceania/au, me/middle-east, af/africa — matched against the continent of the offer's region, derived from
 *      each provider's naming (AWS/GCP/Lambda prefixes, Azure names, DO/Vultr/Hetzner city codes, RunPod country
 *      codes, ThreeFold country names). "us" means the United States for prefix matching and North America as an alias.
 */
import type { ProviderId } from '../core/offer.js'

export type Continent = 'eu' | 'na' | 'sa' | 'asia' | 'oc' | 'me' | 'af'

const ALIASES: Record<string, Continent> = {
  eu: 'eu',
  europe: 'eu',
  emea: 'eu',
  na: 'na',
  'north-america': 'na',
  northamerica: 'na',
  us: 'na',
  americas: 'na',
  sa: 'sa',
  'south-america': 'sa',
  southamerica: 'sa',
  latam: 'sa',
  asia: 'asia',
  ap: 'asia',
  apac: 'asia',
  oc: 'oc',
  oceania: 'oc',
  au: 'oc',
  australia: 'oc',
  me: 'me',
  'middle-east': 'me',
  af: 'af',
  africa: 'af',
}

/** Continent of a request alias, if it is one. */
export const continentAlias = (r: string): Continent | undefined => ALIASES[r.trim().toLowerCase()]

const PREFIXES: Array<[string, Continent]> = [
  ['us', 'na'],
  ['ca', 'na'],
  ['mx', 'na'],
  ['northamerica', 'na'],
  ['southamerica', 'sa'],
  ['sa', 'sa'],
  ['eu', 'eu'],
  ['europe', 'eu'],
  ['uk', 'eu'],
  ['ap', 'asia'],
  ['asia', 'asia'],
  ['australia', 'oc'],
  ['me', 'me'],
  ['il', 'me'],
  ['af', 'af'],
  ['africa', 'af'],
]

// city / datacenter codes (DigitalOcean, Vultr, Hetzner) and country codes (RunPod)
const CODES: Record<string, Continent> = {
  nyc: 'na', sfo: 'na', tor: 'na', ewr: 'na', ord: 'na', dfw: 'na', lax: 'na', sea: 'na', sjc: 'na', atl: 'na', mia: 'na',
  yto: 'na', mex: 'na', hnl: 'na', ash: 'na', hil: 'na', ca: 'na', us: 'na',
  ams: 'eu', lon: 'eu', fra: 'eu', par: 'eu', cdg: 'eu', lhr: 'eu', mad: 'eu', waw: 'eu', sto: 'eu', man: 'eu', nbg: 'eu',
  fsn: 'eu', hel: 'eu', cz: 'eu', nl: 'eu', ro: 'eu', no: 'eu', se: 'eu', de: 'eu', fr: 'eu', is: 'eu', be: 'eu', gb: 'eu',
  es: 'eu', it: 'eu', pl: 'eu', fi: 'eu',
  sgp: 'asia', sin: 'asia', blr: 'asia', bom: 'asia', del: 'asia', nrt: 'asia', itm: 'asia', icn: 'asia', tyo: 'asia',
  sg: 'asia', jp: 'asia', kr: 'asia', in: 'asia', tw: 'asia', hk: 'asia',
  syd: 'oc', mel: 'oc', au: 'oc', nz: 'oc',
  sao: 'sa', scl: 'sa', br: 'sa', cl: 'sa',
  jnb: 'af', za: 'af', eu: 'eu',
  tlv: 'me', il: 'me', ae: 'me',
}

// Azure region names are run-together words
const AZURE: Array<[RegExp, Continent]> = [
  [/^(south)?africa/, 'af'],
  [/^(uae|qatar|israel|saudi)/, 'me'],
  [/^(brazil|chile|mexico(?!central))/, 'sa'],
  [/^(australia|newzealand)/, 'oc'],
  [/^(eastasia|southeastasia|japan|korea|(central|south|west|jio)india|india|taiwan|indonesia|malaysia)/, 'asia'],
  [/^(north|west)europe|^(uk|france|germany|switzerland|norway|sweden|poland|italy|spain|austria|belgium|denmark|finland|greece)/, 'eu'],
  [/^(east|west|central|north|south|westcentral|northcentral|southcentral)us|^us|^canada|^mexicocentral/, 'na'],
]

const COUNTRIES: Record<string, Continent> = {
  belgium: 'eu', netherlands: 'eu', germany: 'eu', france: 'eu', austria: 'eu', switzerland: 'eu', 'united-kingdom': 'eu',
  ireland: 'eu', italy: 'eu', spain: 'eu', portugal: 'eu', finland: 'eu', sweden: 'eu', norway: 'eu', denmark: 'eu',
  poland: 'eu', czechia: 'eu', 'czech-republic': 'eu', slovenia: 'eu', croatia: 'eu', romania: 'eu', bulgaria: 'eu',
  hungary: 'eu', greece: 'eu', lithuania: 'eu', latvia: 'eu', estonia: 'eu', luxembourg: 'eu', ukraine: 'eu', serbia: 'eu',
  'united-states': 'na', canada: 'na', mexico: 'na',
  brazil: 'sa', argentina: 'sa', chile: 'sa', colombia: 'sa', ecuador: 'sa', peru: 'sa',
  india: 'asia', singapore: 'asia', japan: 'asia', 'south-korea': 'asia', taiwan: 'asia', thailand: 'asia', vietnam: 'asia',
  china: 'asia', 'hong-kong': 'asia', indonesia: 'asia', malaysia: 'asia', philippines: 'asia',
  australia: 'oc', 'new-zealand': 'oc',
  egypt: 'af', 'south-africa': 'af', tanzania: 'af', kenya: 'af', uganda: 'af', nigeria: 'af', morocco: 'af',
  'united-arab-emirates': 'me', israel: 'me', 'saudi-arabia': 'me', qatar: 'me', turkey: 'me',
}

// AWS names by compass point, not continent: these "ap-" regions are in Oceania (Sydney, Melbourne, New Zealand)
const AWS: Record<string, Continent> = { 'ap-southeast-2': 'oc', 'ap-southeast-4': 'oc', 'ap-southeast-6': 'oc' }

const cache = new Map<string, Continent | undefined>()

/** Continent of a provider's region name, or undefined when unknown. */
export function continentOf(provider: ProviderId, region: string): Continent | undefined {
  const key = `${provider}|${region}`
  if (cache.has(key)) return cache.get(key)
  const r = region.toLowerCase()
  let c: Continent | undefined
  if (provider === 'threefold') c = COUNTRIES[r]
  else if (provider === 'azure') c = AZURE.find(([re]) => re.test(r))?.[1]
  else if (provider === 'aws') c = AWS[r]
  if (!c && /[-_]/.test(r)) {
    const head = r.split(/[-_]/)[0]!
    c = PREFIXES.find(([p]) => p === head)?.[1]
  }
  c ??= CODES[r.replace(/\d+$/, '')] ?? CODES[r.slice(0, 3)]
  if (cache.size > 100_000) cache.clear()
  cache.set(key, c)
  return c
}

/** True when `wanted` (one requested region) matches the offer's region or zone; rules in the module comment. */
export function regionMatches(wanted: string, provider: ProviderId, region: string, zone?: string): boolean {
  const w = wanted.trim().toLowerCase()
  if (!w) return true
  const r = region.toLowerCase()
  if (r === w || zone?.toLowerCase() === w) return true
  if (r.startsWith(w)) {
    const next = r.charCodeAt(w.length)
    const last = w.charCodeAt(w.length - 1)
    // a digit continues the number when the request ends in one: europe-west1 is not europe-west10
    const digitBoundary = next >= 48 && next <= 57 && !(last >= 48 && last <= 57)
    if (w.endsWith('-') || next === 45 /* - */ || digitBoundary) return true
  }
  const alias = continentAlias(w)
  return alias !== undefined && continentOf(provider, region) === alias
}
