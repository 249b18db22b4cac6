// po() — potrack's browser tracker. It speaks Partnero's calls and replays the
// queue of Partnero's loader (or potrack's shorter one), so a site only changes
// the script URL. Size matters: TestScriptSize holds every variant to its
// budget. XD (link decoration), SPA (history hooks) and STRIPE (Stripe
// Checkout stamping) are set by the build (snippet.Build); code behind a
// false flag is dropped.
import { ls, now, post, run, send, set } from './outbox'

declare const XD: boolean, SPA: boolean, STRIPE: boolean

const w = window as any
const d = document
const loc = location
const COOKIE = 'partnero_partner'
// The parameter a decorated link carries to another of the merchant's
// domains (XD): it sets the cookie there and is not a click.
const REF = 'po_ref'
const name: string = w.__partnerObject || 'po'
const stub = w[name]

let program: string

// Calls held until po('consent', true), or 0 when consent is not awaited.
let held: any = 0

// The referral cookie's partner, or '' (the regexp's $ matches when there
// is none).
const partner = (): string => decodeURIComponent(d.cookie.match(/(^|; )partnero_partner=([^;]*)|$/)![2] || '')

// What the script keeps in localStorage.po: cookie days (c) and attribution
// (a) as the last click's answer gave them (30 and last before any), the
// cookie's expiry (e), and the last click's partner (k) and time (t).
const st: any = { c: 30, ...ls('po') }
const keep = () => ls('po', st)

// A call's body: the merchant's {data, options} as given.
const body = (type: string, o?: any) =>
  JSON.stringify({ program, type, ...o, partner: { key: partner() }, url: loc.href, referrer: d.referrer })

// setCookie writes the referral cookie (v empty: removes it) until the
// time exp (ms; by default the program's cookie lifetime from now), and
// remembers exp so that an undo can restore it. The host-only cookie goes
// first: with a cookie_domain, an earlier version or setting may have
// written one, and two cookies of one name leave the wrong one to be read.
const setCookie = (v: string, exp = now() + st.c * 864e5) => {
  const dom = set.cookie_domain
  const c = COOKIE + '=' + encodeURIComponent(v) + ';path=/;SameSite=Lax' + (loc.protocol == 'https:' ? ';Secure' : '') + ';max-age='
  d.cookie = c + 0
  d.cookie = c + (v ? ((exp - now()) / 1e3) | 0 : 0) + (('.' + loc.hostname).endsWith('.' + dom) ? ';domain=' + dom : '')
  st.e = exp
  keep()
}

// The landing URL's partner, read as the server reads it: the referral
// parameters in order, then the path form /aff/KEY (none, or a malformed
// escape: no partner).
const landing = (q = new URLSearchParams(loc.search)): string | undefined => {
  try {
    return (
      set.referral_params.map((p: string) => q.get(p)?.trim()).find((v?: string) => v) ||
      decodeURIComponent(loc.pathname.match(/\/aff\/([^/]+)/)![1])
    )
  } catch (e) {}
}

// A landing writes the cookie at once, before and whatever the server
// answers (an ad blocker or a dropped network must not lose the referral),
// unless the program keeps the first referral and there is one; then it
// reports the click. An answer naming the partner sets the cookie as the
// program says (unless the server set it: a script write would cut
// Safari's lifetime to 7 days); one saying the partner is unknown puts
// back what was there. A reload, or a landing for the same partner within
// 30 minutes, is not another click (nor a write).
const click = () => {
  const b = body('clicks.create') // with the cookie as the landing found it
  const k = landing()
  const prev = partner()
  const prevExp = st.e
  const t = now()
  const wrote = k && !(st.a == 'first' && prev)
  if (k) {
    if (st.k == k && t - st.t < 18e5) return
    st.k = k
    st.t = t
  }
  wrote && prev != k ? setCookie(k) : keep()
  post(b)
    .then(r =>
      r.status == 202
        ? wrote && setCookie(prev, prevExp)
        : r.status == 201 &&
          r.json().then(j => {
            st.c = j.cookie_days
            st.a = j.attribution
            j.cookie ? setCookie(j.cookie) : keep()
          })
    )
    .catch(() => {})
}

// land looks at the URL as at a landing: a decorated link's partner is
// taken as it is; a URL with a query string or an /aff/ path is worth a
// click, and a prerendered page's when it is shown.
const land = () => {
  if (XD) {
    const x = new URLSearchParams(loc.search).get(REF)
    x && !(st.a == 'first' && partner()) && setCookie(x)
  }
  ;(loc.search || landing()) &&
    ((d as any).prerendering ? d.addEventListener('prerenderingchange', click) : click())
}

const call = (type: string, o: any = {}) => {
  if (type == 'transactions.create' && !o.data?.key) {
    // A keyless sale gets a client key before its first attempt, so retries
    // cannot double-count; the key is remembered per page and call, so that
    // reloading the thank-you page sends the same key again.
    const id = 'po_k' + loc.href + JSON.stringify(o)
    let key = ('c' + now() + Math.random()).replace('.', '')
    try {
      key = sessionStorage[id] ||= key
    } catch (e) {}
    o = { ...o, data: { ...o.data, key } }
  }
  send(body(type, o))
}

function po(c: string, x?: any, y?: any) {
  try {
    // customers (or customer) signup and transactions create, as Partnero
    // names them.
    const type = c.replace(/s?$/, 's.') + x
    if (c == 'consent') {
      // false holds what follows in memory; true lets it all go, in order,
      // after what earlier pages left in the outbox.
      const h = held
      held = !x && (held || [])
      if (x && h) run(), replay(h)
    } else if (held) held.push({ a: arguments })
    else if (c == 'settings') set[x] = x == 'api_host' ? y.replace(/\/+$/, '') : y
    else if (c == 'program') {
      program = x
      if (y == 'load') land()
    } else if (type == 'customers.signup' || type == 'transactions.create') call(type, y)
    if (STRIPE) stamp()
  } catch (e) {}
  return po
}
po.p = 1

// replay makes the calls a loader queued (each {a: its arguments, q: the
// calls chained on it}) or consent held.
function replay(q?: any[]) {
  q?.forEach(e => {
    po(...(e.a as [string]))
    replay(e.q)
  })
}

// decorate adds the partner to a link or form to one of the link_domains
// (or their subdomains) as the visitor uses it (pointer down, click,
// submit), so links the page adds later are covered too. A GET form drops
// its action's query, so it gets a hidden field instead.
const decorate = (e: any) => {
  try {
    const p = partner()
    const el = e.target.closest('a,form')
    const u = new URL(el.action || el.href)
    if (p && !held && set.link_domains.some((x: string) => ('.' + u.hostname).endsWith('.' + x))) {
      u.searchParams.set(REF, p)
      if (el.href) el.href = u
      else if (el.method == 'get')
        (el[REF] || el.appendChild(Object.assign(d.createElement('input'), { type: 'hidden', name: REF }))).value = p
      else el.action = u
    }
  } catch (e) {}
}

// stamp hands the partner to Stripe Checkout, whose session then names it as
// client_reference_id: Payment Links get it in their URL, pricing tables and
// buy buttons as an attribute, which they must have before the visitor
// clicks inside their frame. Stripe drops a client_reference_id that is not
// 1 to 200 letters, digits, '-' or '_', so such a key is not stamped.
const stamp = () => {
  const p = partner()
  if (!held && /^[\w-]{1,200}$/.test(p))
    for (const el of d.querySelectorAll<any>('a[href^="https://buy.stripe.com/"],stripe-pricing-table,stripe-buy-button'))
      if (el.href) {
        const u = new URL(el.href)
        u.searchParams.set('client_reference_id', p)
        el.href = u
      } else el.setAttribute('client-reference-id', p)
}

// A second copy of the script on the page must not reset the first one's state.
if (!stub?.p) {
  // Retry in the page too: at once when the network is back or the page
  // is shown again, else when the first entry is due (run's timer).
  const retry = () => d.hidden || held || run(1)
  addEventListener('online', retry)
  d.addEventListener('visibilitychange', retry)
  if (XD) for (const t of ['mousedown', 'click', 'submit']) d.addEventListener(t, decorate, true)
  if (SPA) {
    // A URL the app reached without a page load is a landing too, once
    // the program is known, when it names a partner.
    const nav = () => program && landing() && po('program', program, 'load')
    for (const m of ['pushState', 'replaceState']) {
      const f = (history as any)[m]
      ;(history as any)[m] = function (this: any) {
        f.apply(this, arguments)
        nav()
      }
    }
    addEventListener('popstate', nav)
  }
  // Stripe elements the page adds later (an app, a pricing section shown
  // on demand) are stamped as they arrive; po() stamps after each call.
  if (STRIPE) new MutationObserver(stamp).observe(d.documentElement, { childList: true, subtree: true })
  w[name] = po
  replay(stub?.q)
  // Calls stored on earlier pages go once the queue is replayed: it may
  // hold po('consent', false), which holds them too.
  held || run()
}
