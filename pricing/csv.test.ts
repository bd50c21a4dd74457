import { describe, expect, test } from 'vitest'
import { Decimal } from 'decimal.js'
import { columnIndex, parseCsv } from './csv.js'
import { offerFromJson, offerToJson } from './offerJson.js'
import { parsePyLiteral } from './pyLiteral.js'
import { offerProblems, refreshProblem } from './sanity.js'

describe('parseCsv', () => {
  test('default: quotes, doubled quotes, commas and newlines inside cells, CRLF, BOM, blank lines', () => {
    const rows = parseCsv('\ufeffa,b,c\r\n1,"x,y",""\r\n\r\n2,"he said ""hi""","multi\nline"\n3,,\n')
    expect(rows).toEqual([
      { line: 1, cells: ['a', 'b', 'c'], raw: 'a,b,c' },
      { line: 2, cells: ['1', 'x,y', ''], raw: '1,"x,y",""' },
      { line: 4, cells: ['2', 'he said "hi"', 'multi\nline'], raw: '2,"he said ""hi""","multi\nline"' },
      { line: 6, cells: ['3', '', ''], raw: '3,,' },
    ])
  })

  test('error: columnIndex names the missing columns', () => {
    expect(() => columnIndex(['a', 'b'], ['a', 'Price', 'Region'])).toThrow('missing column(s) Price, Region')
  })
})

describe('parsePyLiteral', () => {
  test('default: dicts, lists, tuples, strings, numbers, True/False/None', () => {
    expect(parsePyLiteral(`{'a': [1, 2.5, -3e2], "b": ('x', None), 'c': {'d': True, 'e': False}, 'f': 'it\\'s',}`)).toEqual({
      a: [1, 2.5, -300],
      b: ['x', null],
      c: { d: true, e: false },
      f: "it's",
    })
  })
  test('error: malformed input', () => {
    expect(() => parsePyLiteral("{'a': }")).toThrow(SyntaxError)
    expect(() => parsePyLiteral("['a'] x")).toThrow('trailing characters')
  })
})

describe('sanity', () => {
  const base = offerFromJson({ provider: 'aws', region: 'r', instanceType: 't', vcpu: 2, memoryGiB: 4, gpuCount: 0, gpuModel: null, includedStorageGiB: 0, hourlyUsd: '0.1', spotHourlyUsd: null, source: 's', fetchedAt: 1 })
  test.each([
    ['0', 'hourly price is zero'],
    ['-1', 'hourly price -1 is negative'],
    ['700.0', 'hourly price 700 is a placeholder'],
    ['1000.01', 'hourly price 1000.01 is above the sanity cap of 1000 USD/h'],
  ])('error: price %s', (price, why) => {
    expect(offerProblems({ ...base, hourlyUsd: new Decimal(price) })).toEqual([why])
  })
  test('error: impossible specs', () => {
    expect(offerProblems({ ...base, vcpu: 0, memoryGiB: 1e9, gpu: { count: 1.5 } })).toEqual([
      'vCPU 0 outside (0, 4096]',
      'memory 1000000000 GiB outside (0, 65536]',
      'GPU count 1.5 outside [0, 64]',
    ])
  })
  test('refreshProblem: empty and shrinking refreshes', () => {
    expect(refreshProblem(0, 10)).toBeUndefined()
    expect(refreshProblem(100, 50)).toBeUndefined()
    expect(refreshProblem(100, 49)).toContain('shrank the source from 100 to 49')
    expect(refreshProblem(100, 0)).toBe('the refresh produced no usable offers')
  })
  test('offerJson: round trip keeps every field', () => {
    const j = { ...offerToJson(base), zone: 'z', gpuCount: 2, gpuModel: 'A100', gpuMemoryGiB: 40, gpuHourlyUsd: '0.05', storageUsdPerGiBMonth: '0.08', ipv4HourlyUsd: '0.005', maxStorageGiB: 10, spotHourlyUsd: '0.03' }
    expect(offerToJson(offerFromJson(j))).toEqual(j)
  })
})
