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
// Back-off after attempt n (counted from 0): 10 s * 2^n, at most a day.
const BASE_MS = 1e4
const MAX_MS = 864e5

export const post = (u: string, b: string): Promise<Response> =>
  fetch(u, { method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: b, keepalive: true })

// get and put read and write a JSON value in localStorage, or nothing.
export const get = (k: string) => {
  try {
    return JSON.parse(localStorage[k])
  } catch (e) {}
}
export const put = (k: string, v: any) => {
  try {
    localStorage[k] = JSON.stringify(v)
  } catch (e) {}
}

const load = (): Entry[] => get(KEY) || []

// others returns the stored entries except the one with the body b.
const others = (b: string): Entry[] => load().filter(x => x.b != b)

const save = (list: Entry[]) => put(KEY, list)

// Calls go out one at a time, each after the previous one's answer: sent
// together they may reach the server in any order, and a sale that overtakes
// the signup creating its customer is refused for good. After a failure that
// will be retried, the calls behind it wait in the outbox too, so that they
// are retried after it, in order. The chain resolves to "keep going".
let last: Promise<boolean> = Promise.resolve(true)

// send makes one attempt. The entry is written back with its next try time
// BEFORE the request is queued, so that a tab closed mid-flight leaves it for
// a later page load, and a second tab does not send it again at once. Entries
// are identified by their body: an identical body is the same call, which the
// server treats as a duplicate anyway.
export const send = (e: Entry) => {
  const list = others(e.b)
  e.t = Date.now() + Math.min(BASE_MS * 2 ** e.n, MAX_MS)
  if (++e.n < MAX_ATTEMPTS) list.push(e)
  save(list)
  last = last.then(
    go =>
      go &&
      post(e.u, e.b).then(
        r =>
          // 2xx is done; 4xx other than 429 will never succeed, so it is not retried.
          r.status < 500 && r.status != 429 && (save(others(e.b)), true),
        () => false
      )
  )
}

// flush retries the entries that are due.
export const flush = () => {
  const now = Date.now()
  load().forEach(e => e.t > now || send(e))
}
