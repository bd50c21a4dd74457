// blueprint-operator dashboard: reads the JSON API, follows /api/events (server-sent events), never reloads.
'use strict'
;(() => {
  const $ = (sel) => document.querySelector(sel)
  const h = (tag, attrs, ...kids) => {
    const el = document.createElement(tag)
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue
      if (k === 'class') el.className = v
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v)
      else el.setAttribute(k, v === true ? '' : String(v))
    }
    for (const c of kids.flat()) if (c !== undefined && c !== null && c !== false) el.append(c instanceof Node ? c : document.createTextNode(String(c)))
    return el
  }
  const state = { services: [], targets: [], pricing: { sources: [] }, status: null, selected: null, detail: null }

  // amounts: token base units (decimal strings) with the token's decimals; USD decimal strings
  const units = (v, token) => {
    if (v === undefined || v === null) return '—'
    const d = token ? token.decimals : 6
    let n = BigInt(v)
    const neg = n < 0n
    if (neg) n = -n
    const base = 10n ** BigInt(d)
    const frac = (n % base).toString().padStart(d, '0').replace(/0+$/, '')
    return `${neg ? '-' : ''}${n / base}${frac ? '.' + frac : ''} ${token ? token.symbol : ''}`.trim()
  }
  const usd = (v) => (v === undefined || v === null ? '—' : `${Number(v).toFixed(6)} USD`)
  const ago = (sec) => (sec === null || sec === undefined ? '—' : sec < 120 ? `${sec} s` : sec < 7200 ? `${Math.round(sec / 60)} min` : `${Math.round(sec / 3600)} h`)
  const countdown = (iso) => {
    if (!iso) return '—'
    const s = Math.round((Date.parse(iso) - Date.now()) / 1000)
    if (s <= 0) return `expired ${ago(-s)} ago`
    const hh = Math.floor(s / 3600)
    const mm = Math.floor((s % 3600) / 60)
    const ss = s % 60
    return `${hh ? hh + ' h ' : ''}${mm ? mm + ' min ' : ''}${ss} s left`
  }
  const message = (text, error) => {
    const m = $('#message')
    m.textContent = text
    m.className = error ? 'message error' : 'message'
  }

  const token = () => $('#token').value.trim()
  $('#token').value = sessionStorage.getItem('bpo-token') || ''
  $('#token').addEventListener('change', () => sessionStorage.setItem('bpo-token', token()))

  async function api(path, init) {
    const res = await fetch(path, { ...init, headers: { accept: 'application/json', ...(init && init.headers) } })
    const body = await res.json().catch(() => ({}))
    if (!res.ok) {
      const e = new Error((body.error && `${res.status} ${body.error.code}: ${body.error.message}`) || `${res.status}`)
      e.status = res.status
      throw e
    }
    return body
  }
  async function act(path, body) {
    const t = token()
    try {
      const out = await api(path, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(t && { authorization: `Bearer ${t}` }) },
        body: JSON.stringify(body || {}),
      })
      message(`${path}: ${JSON.stringify(out)}`)
      schedule()
      return out
    } catch (err) {
      message(`${path}: ${err.message}`, true)
    }
  }

  function badge(s) {
    const b = [h('span', { class: `badge ${s.state}`, 'data-role': 'state' }, s.state)]
    if (s.paymentExpired) b.push(' ', h('span', { class: 'badge expired', 'data-role': 'expired' }, 'payment expired'))
    if (s.reason) b.push(' ', h('span', { class: 'err' }, s.reason))
    return b
  }

  function renderServices() {
    const body = $('#services tbody')
    if (!state.services.length) {
      body.replaceChildren(h('tr', {}, h('td', { colspan: 13, class: 'empty' }, 'no services yet')))
      return
    }
    body.replaceChildren(
      ...state.services.map((s) =>
        h(
          'tr',
          { class: `service${state.selected === s.serviceId ? ' selected' : ''}`, 'data-service': s.serviceId, onclick: () => select(s.serviceId) },
          h('td', {}, s.serviceId, h('div', { class: 'err' }, `blueprint ${s.blueprintId}`)),
          h('td', {}, badge(s)),
          h('td', {}, s.tier || '—'),
          h('td', { class: 'num' }, s.replicas),
          h('td', {}, s.target || '—'),
          h('td', {}, s.endpoints.map((e) => h('div', {}, h('a', { href: e, target: '_blank', rel: 'noopener', onclick: (ev) => ev.stopPropagation() }, e)))),
          h('td', { 'data-role': 'paid-until', 'data-iso': s.paidUntil || '', title: s.paidUntil || '' }, countdown(s.paidUntil)),
          h('td', { class: 'num', 'data-role': 'paid' }, units(s.money.paid, s.token)),
          h('td', { class: 'num' }, units(s.money.earned, s.token)),
          h('td', { class: 'num' }, units(s.money.refunded, s.token)),
          h('td', { class: 'num' }, usd(s.money.cloudCostUsd)),
          h('td', { class: 'num' }, usd(s.money.marginUsd)),
          h(
            'td',
            { onclick: (ev) => ev.stopPropagation() },
            h('button', { type: 'button', 'data-action': 'restart', disabled: s.state !== 'active', onclick: () => act(`/api/services/${s.serviceId}/restart`) }, 'restart'),
            ' ',
            h(
              'button',
              {
                type: 'button',
                'data-action': 'stop',
                disabled: !['requested', 'provisioning', 'active', 'scaled-to-zero'].includes(s.state),
                onclick: () => confirm(`Stop service ${s.serviceId}? It is destroyed, the earned part withdrawn and the rest refunded.`) && act(`/api/services/${s.serviceId}/stop`),
              },
              'stop',
            ),
          ),
        ),
      ),
    )
  }

  function renderDetail() {
    const d = state.detail
    $('#detail').hidden = !d
    if (!d) return
    $('#detail-id').textContent = `${d.serviceId} (${d.deploymentId})`
    const last = d.timeline.length - 1
    $('#timeline').replaceChildren(
      ...d.timeline.map((t, i) =>
        h(
          'li',
          { class: i === last ? 'current' : '' },
          h('span', { class: `badge ${t.to}` }, t.to),
          ' ',
          t.cause,
          h('span', { class: 'when' }, new Date(t.at).toLocaleString()),
          t.detail ? h('span', { class: 'when' }, t.detail) : null,
          // the current stage's progress: the side effect in flight (intent first), its attempt and since when
          i === last && d.intent ? h('span', { class: 'when', 'data-role': 'progress' }, `in progress: ${d.intent.op}${d.intent.detail ? ` ${d.intent.detail}` : ''}, attempt ${d.intent.attempt}, since ${new Date(d.intent.at).toLocaleTimeString()}`) : null,
        ),
      ),
    )
    $('#decision').textContent = JSON.stringify(d.decision || d.quote || null, null, 2)
    $('#spec').textContent = JSON.stringify(d.spec, null, 2)
    $('#endpoints').replaceChildren(...(d.endpoints.length ? d.endpoints.map((e) => h('li', {}, h('a', { href: e, target: '_blank', rel: 'noopener' }, e))) : [h('li', { class: 'empty' }, 'none')]))
    const m = d.money
    const row = (k, v) => [h('dt', {}, k), h('dd', {}, v)]
    $('#money').replaceChildren(
      ...row('paid', units(m.paid, d.token)),
      ...row('earned', units(m.earned, d.token)),
      ...row('refunded', units(m.refunded, d.token)),
      ...row('in escrow', units(m.escrowed, d.token)),
      ...row('cloud cost', usd(m.cloudCostUsd)),
      ...row('margin so far', usd(m.marginUsd)),
      ...row('paid until', d.paidUntil ? `${new Date(d.paidUntil).toLocaleString()} (${countdown(d.paidUntil)})` : '—'),
    )
  }

  function renderTargets() {
    $('#targets tbody').replaceChildren(
      ...state.targets.map((t) =>
        h(
          'tr',
          { 'data-target': t.name },
          h('td', {}, t.name),
          h('td', {}, t.region || t.kind),
          h('td', { class: 'num' }, t.hourlyUsd ? `${t.hourlyUsd} USD/h` : 'catalog'),
          h('td', { class: 'num' }, t.free ? `${t.used.vcpu} / ${t.free.vcpu}` : `${t.used.vcpu} / —`),
          h('td', { class: 'num' }, t.free ? `${t.used.memoryGiB} / ${t.free.memoryGiB} GiB` : `${t.used.memoryGiB} GiB / —`),
          h('td', { class: 'num' }, `${t.replicas.ready} / ${t.replicas.wanted}`),
          h('td', { class: 'num' }, t.services),
          h('td', { class: 'err' }, t.lastError ? `${t.lastError.op}: ${t.lastError.code} — ${t.lastError.message} (${new Date(t.lastError.at).toLocaleTimeString()})` : ''),
        ),
      ),
    )
  }

  function renderPricing() {
    const rows = state.pricing.sources
    $('#pricing tbody').replaceChildren(
      ...(rows.length
        ? rows.map((p) =>
            h(
              'tr',
              { 'data-source': p.source },
              h('td', {}, p.source),
              h('td', { class: 'num' }, p.rows),
              h('td', { class: 'num' }, ago(p.ageSeconds)),
              h('td', {}, h('span', { class: `badge ${p.healthy ? 'ok' : 'bad'}` }, p.healthy ? 'ok' : 'stale or failing')),
              h('td', { class: 'err' }, p.lastError || ''),
            ),
          )
        : [h('tr', {}, h('td', { colspan: 5, class: 'empty' }, state.pricing.enabled ? 'no sources' : 'no public price sources enabled ([pricing] sources)'))]),
    )
  }

  function renderStatus() {
    const s = state.status
    if (!s) return
    const c = s.chain
    const el = $('#status')
    el.replaceChildren(
      `operator ${s.operatorId} (${s.operator}) · chain ${c.chainId} · head ${c.head ?? '—'} · cursor ${c.cursor ?? '—'} · lag `,
      h('span', { 'data-role': 'lag' }, c.lag ?? '—'),
      ` blocks · ${s.services} service(s) `,
      s.draining ? h('span', { class: 'badge draining' }, 'draining') : '',
    )
    $('#drain').textContent = s.draining ? 'resume' : 'drain'
  }

  async function select(id) {
    state.selected = state.selected === id ? null : id
    await refreshDetail()
    renderServices()
  }
  async function refreshDetail() {
    if (!state.selected) {
      state.detail = null
      return renderDetail()
    }
    try {
      state.detail = await api(`/api/services/${state.selected}`)
    } catch (err) {
      state.detail = null
      message(err.message, true)
    }
    renderDetail()
  }

  async function refresh() {
    try {
      const [services, targets, pricing, status] = await Promise.all([api('/api/services'), api('/api/targets'), api('/api/pricing'), api('/api/status')])
      Object.assign(state, { services, targets, pricing, status })
      renderServices()
      renderTargets()
      renderPricing()
      renderStatus()
      await refreshDetail()
    } catch (err) {
      message(`refresh failed: ${err.message}`, true)
    }
  }
  let timer
  function schedule() {
    clearTimeout(timer)
    timer = setTimeout(refresh, 150)
  }

  $('#drain').addEventListener('click', () => act('/api/operator/drain', { draining: !(state.status && state.status.draining) }))
  $('#detail-close').addEventListener('click', () => select(state.selected))

  function connect() {
    const es = new EventSource('/api/events')
    es.addEventListener('open', () => ($('#live').className = 'live on'))
    es.addEventListener('error', () => ($('#live').className = 'live off'))
    es.addEventListener('status', (e) => {
      state.status = JSON.parse(e.data)
      renderStatus()
    })
    es.addEventListener('stage', (e) => {
      const s = JSON.parse(e.data)
      message(`service ${s.serviceId}: ${s.from || '—'} → ${s.to} (${s.cause})`)
      schedule()
    })
    es.addEventListener('tick', schedule)
  }

  // countdowns move every second without a request
  setInterval(() => {
    for (const td of document.querySelectorAll('[data-role="paid-until"]')) td.textContent = countdown(td.getAttribute('data-iso'))
  }, 1000)

  refresh()
  connect()
})()
