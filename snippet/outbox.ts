// The outbox keeps the calls that must not be lost (signups and sales) in
// localStorage until /collect has answered them, so that a sale survives a
// closed tab, a dropped network or a server outage. Every storage access is
// guarded: Safari's private mode and disabled storage throw, and tracking must
// still work (just without retries) when they do.

// An outbox entry: the full /collect URL, the body, the number of attempts
// made so far and the time (ms since the epoch) before which nobody retries it.
export interface Entry {
  u: string
  b: string
  n: number
  t: number
}

const KEY = 'po_outbox'
// Attempts before an entry is dropped for good.
const MAX_ATTEMPTS = 20
// Back-off after attempt n (counted from 0): 1 s * 2^n, at most a day. A
// buyer who stays on the thank-you page sees the retries at 1, 3, 7, 15 s…
const BASE_MS = 1e3
const MAX_MS = 864e5

// A string body is sent as text/plain;charset=UTF-8: no CORS preflight.
export const post = (u: string, b: string): Promise<Response> => fetch(u, { method: 'POST', body: b, keepalive: true })

// get and put read and write a JSON value in localStorage, or nothing; put
// is truthy when the value was written.
export const get = (k: string) => {
  try {
    return JSON.parse(localStorage[k])
  } catch (e) {}
}
export const put = (k: string, v: any) => {
  try {
    return (localStorage[k] = JSON.stringify(v))
  } catch (e) {}
}

// Where storage fails (disabled, or full: a write throws while reads
// still work) the page's own copy serves from then on, so calls still go
// out and are retried while the page is open, just not on later pages.
let mem: Entry[] = []
let stored: any = 1
const load = (): Entry[] => (stored && get(KEY)) || mem

// others returns the stored entries except the one with the body b. Entries
// are identified by their body: an identical body is the same call, which
// the server treats as a duplicate anyway.
const others = (b: string): Entry[] => load().filter(x => x.b != b)

const save = (list: Entry[]) => (stored = put(KEY, (mem = list)))

let busy = 0
let timer: any

// run sends the outbox's first entry, and the next when it is answered:
// one call at a time, in order, because sent together they may reach the
// server in any order, and a sale that overtakes the signup creating its
// customer is refused for good. An entry that is not due yet (it failed
// here, or another tab has it in flight) holds the ones behind it, and run
// comes back when it is due; now (the network is back, the page is shown
// again) tries it at once. Each attempt is written back with its next try
// time BEFORE the request goes out, so that a tab closed mid-flight leaves
// it for a later page, and another tab does not send it at the same time.
export const run = (now?: any) => {
  const e = load()[0]
  clearTimeout(timer)
  if (busy || !e) return
  const due = e.t - Date.now()
  if (due > 0 && !now) return (timer = setTimeout(run, due))
  busy = 1
  const list = others(e.b)
  e.t = Date.now() + Math.min(BASE_MS * 2 ** e.n, MAX_MS)
  // An attempt forced by an event does not count: a buyer switching tabs
  // during an outage must not use up the entry's attempts.
  if ((e.n += now ? 0 : 1) < MAX_ATTEMPTS) list.unshift(e)
  save(list)
  post(e.u, e.b)
    // 2xx is done; 4xx other than 429 will never succeed, so it is not retried.
    .then(r => r.status < 500 && r.status != 429 && save(others(e.b)), () => 0)
    .then(() => ((busy = 0), run()))
}

// send queues a call behind the others and starts the outbox.
export const send = (u: string, b: string) => {
  save(others(b).concat({ u, b, n: 0, t: 0 }))
  run()
}
