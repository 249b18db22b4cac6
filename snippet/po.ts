// po() — potrack's browser tracker. It speaks Partnero's calls and replays the
// queue of Partnero's loader (or potrack's shorter one), so a site only changes
// the script URL. Size matters: TestScriptSize fails above 1,500 bytes gzipped.
import { get, post, put, run, send } from './outbox'

interface Queued {
  a: ArrayLike<any>
  q?: Queued[]
}

const w = window as any
const d = document
const loc = location
const COOKIE = 'partnero_partner'
const name: string = w.__partnerObject || 'po'
const stub = w[name]

// The default api_host is the origin the script came from. Both loaders
// add a classic script, whose currentScript is set while it runs; a copy
// run as a module has none and must name api_host.
let host = ''
let program: string
try {
  host = new URL((d.currentScript as HTMLScriptElement).src).origin
} catch (e) {}

const partner = () => {
  const m = d.cookie.match(/(?:^|; )partnero_partner=([^;]*)/)
  if (m) return decodeURIComponent(m[1])
}

const rnd = () => Math.random().toString(36).slice(2)

// What the script keeps in localStorage.po: the program's referral
// parameters (r), cookie days (c) and attribution (a) as the last click's
// answer gave them (before any answer: the snippet's settings, else the
// defaults), the cookie's expiry (e), and the last click's partner (k) and
// time (t).
const st: any = { r: ['aff'], c: 30, a: 'last', ...get('po') }
const keep = () => put('po', st)

const body = (type: string, o: any = {}) =>
  JSON.stringify({
    program,
    type,
    data: o.data,
    options: o.options,
    partner: { key: partner() },
    url: loc.href,
    referrer: d.referrer,
  })

// setCookie writes the referral cookie (v undefined: removes it) until the
// time exp (ms; by default the program's cookie lifetime from now), and
// remembers exp so that an undo can restore it.
const setCookie = (v: string | undefined, exp: number = Date.now() + st.c * 864e5) => {
  d.cookie =
    COOKIE + '=' + encodeURIComponent(v || '') +
    ';expires=' + new Date(v ? exp : 0).toUTCString() +
    ';path=/;SameSite=Lax' + (loc.protocol == 'https:' ? ';Secure' : '')
  st.e = exp
  keep()
}

// The landing URL's partner, read as the server reads it: the referral
// parameters in order, then the path form /aff/KEY.
const landing = () => {
  const q = new URLSearchParams(loc.search)
  for (const p of st.r) {
    const v = q.get(p)?.trim()
    if (v) return v
  }
  // No /aff/ path (null[1]) or a malformed escape: no partner.
  try {
    return decodeURIComponent(loc.pathname.match(/(?:^|\/)aff\/([^/]+)/)![1])
  } catch (e) {
    return ''
  }
}

// A landing writes the cookie at once, before and whatever the server
// answers (an ad blocker or a dropped network must not lose the referral),
// then reports the click. An answer naming the partner sets the cookie as
// the program says; one saying the partner is unknown puts back what was
// there. A reload, or a landing for the same partner within 30 minutes,
// is not another click.
const click = () => {
  const b = body('clicks.create') // with the cookie as the landing found it
  const k = landing()
  const prev = partner()
  const prevExp = st.e
  const now = Date.now()
  const wrote = k && !(st.a == 'first' && prev)
  if (wrote) setCookie(k)
  // (A reload is a landing for the same partner.)
  if (k && st.k == k && now - st.t < 18e5) return
  if (k) (st.k = k), (st.t = now), keep()
  post(host + '/collect', b)
    .then(r =>
      r.status == 201
        ? r.json()
        : // The partner is unknown (202): put back what was there.
          r.status == 202 && wrote && ((st.k = 0), setCookie(prev, prevExp))
    )
    .then(j => {
      if (j?.partner) {
        st.c = j.cookie_days
        st.a = j.attribution
        j.attribution == 'first' && prev ? keep() : setCookie(j.partner)
      }
    })
    .catch(() => {})
}

// land looks at the URL as at a landing: one with a query string or an
// /aff/ path is worth a click, and a prerendered page's when it is shown.
const land = () =>
  (loc.search || landing()) &&
  ((d as any).prerendering ? d.addEventListener('prerenderingchange', click) : click())

const call = (type: string, o: any = {}) => {
  const data = o.data || {}
  if (type == 'transactions.create' && !data.key) {
    // A keyless sale gets a client key before its first attempt, so retries
    // cannot double-count; the key is remembered per page and call, so that
    // reloading the thank-you page sends the same key again.
    const id = 'po_k' + loc.href + JSON.stringify(o)
    let key = 'c' + rnd() + rnd()
    try {
      key = sessionStorage[id] = sessionStorage[id] || key
    } catch (e) {}
    o = { data: { ...data, key }, options: o.options }
  }
  send(host + '/collect', body(type, o))
}

function po(c: string, x?: any, y?: any) {
  try {
    if (c == 'settings') {
      if (x == 'api_host') host = ('' + y).replace(/\/+$/, '')
      if (x == 'referral_params') st.r = y
    } else if (c == 'program') {
      program = x
      if (y == 'load') land()
    } else if ((c == 'customers' || c == 'customer') && x == 'signup') call('customers.signup', y)
    else if (c == 'transactions' && x == 'create') call('transactions.create', y)
  } catch (e) {}
  return po
}
po.p = 1

const replay = (q?: Queued[]) =>
  (q || []).forEach(e => {
    po.apply(0, e.a as any)
    replay(e.q)
  })

// A second copy of the script on the page must not reset the first one's state.
if (!(stub && stub.p)) {
  // Retry in the page too: at once when the network is back or the page
  // is shown again, else when the first entry is due (run's timer).
  const retry = () => d.hidden || run(1)
  addEventListener('online', retry)
  d.addEventListener('visibilitychange', retry)
  run()
  w[name] = po
  replay(stub && stub.q)
}
