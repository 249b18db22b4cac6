// The outbox keeps the calls that must not be lost (signups and sales) in
// localStorage until /collect has answered them, so that a sale survives a
// closed tab, a dropped network or a server outage. Every storage access is
// guarded: Safari's private mode and disabled storage throw, and tracking must
// still work (just without retries) when they do.
//
// An entry is {b: the body, n: attempts made so far, t: the time (ms since the epoch) before which nobody retries it}.
// Attempts before an entry is dropped for good: 20. Back-off after attempt n
// (counted from 0): 1 s * 2^n, at most a day, so a buyer who stays on the
// thank-you page sees the retries at 1, 3, 7, 15 s…

const KEY = 'po_outbox'

// The snippet's settings (po('settings', …)): referral_params,
// cookie_domain, link_domains, and api_host, where calls go. The default
// api_host is the origin the script came from: both loaders add a classic
// script, whose currentScript is set while it runs; a copy run as a module
// or inline has none and sends to the page's own origin unless it names
// api_host. Stored calls go where the page's settings say, not where they
// went when they failed: a merchant who moves api_host moves them too.
export const set: any = {
  referral_params: ['aff'],
  api_host: new URL((document.currentScript as any)?.src, location as any).origin,
}

// A string body is sent as text/plain;charset=UTF-8: no CORS preflight.
export const post = (b: string): Promise<Response> =>
  fetch(set.api_host + '/collect', { method: 'POST', body: b, keepalive: true })

// ls reads the JSON value under k in localStorage, or writes v there
// (truthy when written); nothing when storage fails.
export const ls = (k: string, v?: any) => {
  try {
    return v ? (localStorage[k] = JSON.stringify(v)) : JSON.parse(localStorage[k])
  } catch (e) {}
}

// Where storage fails (disabled, or full: a write throws while reads
// still work) the page's own copy serves from then on, so calls still go
// out and are retried while the page is open, just not on later pages.
let mem: any[] = []
let stored: any = 1
let busy = 0

export const now = Date.now

// others returns the stored entries except the one with the body b. Entries
// are identified by their body: an identical body is the same call, which
// the server treats as a duplicate anyway.
const others = (b: string): any[] => ((stored && ls(KEY)) || mem).filter((x: any) => x.b != b)

const save = (list: any[]) => (stored = ls(KEY, (mem = list)))

// run sends the outbox's first entry, and the next when it is answered:
// one call at a time, in order, because sent together they may reach the
// server in any order, and a sale that overtakes the signup creating its
// customer is refused for good. An entry that is not due yet (it failed
// here, or another tab has it in flight) holds the ones behind it, and run
// comes back when it is due (an extra timer only finds nothing due, or
// the outbox busy); force (the network is back, the page is shown again)
// tries it at once. Each attempt is written back with its next try time
// BEFORE the request goes out, so that a tab closed mid-flight leaves it
// for a later page, and another tab does not send it at the same time.
export const run = (force?: any) => {
  const e = others('')[0]
  if (busy || !e) return
  const due = e.t - now()
  if (due > 0 && !force) return setTimeout(run, due)
  busy = 1
  e.t = now() + Math.min(1e3 * 2 ** e.n, 864e5)
  // An attempt forced by an event does not count: a buyer switching tabs
  // during an outage must not use up the entry's attempts.
  const rest = others(e.b)
  force || e.n++
  save(e.n < 20 ? [e, ...rest] : rest)
  post(e.b)
    // 2xx is done; 4xx other than 429 will never succeed, so it is not retried.
    .then(r => r.status < 500 && r.status - 429 && save(others(e.b)), () => 0)
    .then(() => run((busy = 0)))
}

// send queues a call behind the others and starts the outbox. A new entry
// has no try time: NaN is never in the future.
export const send = (b: string) => {
  save([...others(b), { b, n: 0 }])
  run()
}
