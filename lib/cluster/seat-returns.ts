/**
 * Seat returns across instances: what keeps a sold-out memory honest when
 * seats come back on another instance. Every section has a counter of
 * returns on each lock server; whatever gives seats back (cancel, release,
 * expiry) raises it on a majority of them before it answers. A memory is
 * remembered with the counters as they were before its batch read the section,
 * and a 409 is answered from it only when counters read after the request
 * arrived (a majority, so at least one server both raised and read) are
 * still those: then no return was answered since the section was seen sold
 * out. Reads of one section within one turn of the event loop share one round trip.
 */
import type { Redis } from 'ioredis'

/** Counter values by lock server index, as read; a server that did not answer is absent. */
export type ReturnCounts = ReadonlyMap<number, number>

/** Each waits for the servers at most the store's timeout, and never past the deadline (epoch ms) when one is given. */
export interface SeatReturns {
  /** The section's counters now: null when too few servers answered to know. */
  read: (key: string, deadline?: number) => Promise<ReturnCounts | null>
  /** Counts a return of seats; resolves once a majority counted it, rejects when fewer could (the count may still land later). */
  announce: (key: string, deadline?: number) => Promise<void>
}

/** True when no return was counted between `before` and `now` (both read from a majority). */
export function unchangedSince (before: ReturnCounts, now: ReturnCounts): boolean {
  for (const [node, count] of now) {
    // a server not read before may hold a return the others missed: not provably current
    if (before.get(node) !== count) return false
  }
  return true
}

export interface RedisSeatReturnsOptions {
  /** how long a read or an announce may wait for the servers */
  timeoutMs: number
  /** counters of sections without returns for this long are dropped (then read as changed, which is safe) */
  keepMs?: number
}

const DAY_MS = 86_400_000

export function redisSeatReturns (clients: readonly Redis[], options: RedisSeatReturnsOptions): SeatReturns {
  const quorum = Math.floor(clients.length / 2) + 1
  const keepMs = options.keepMs ?? DAY_MS
  const counterKey = (key: string): string => `seats-returned:${key}`
  // reads asked during this turn of the event loop, per section: one round trip serves them all
  const pending = new Map<string, Promise<ReturnCounts | null>>()

  const waitMs = (deadline?: number): number => Math.min(options.timeoutMs, deadline === undefined ? Infinity : deadline - Date.now())

  /** Runs `op` on every server; resolves with the answers of the first `quorum`, or null if that many cannot answer within waitMs. */
  async function onQuorum<T> (op: (client: Redis) => Promise<T>, waitMs: number): Promise<Map<number, T> | null> {
    return await new Promise(resolve => {
      const answers = new Map<number, T>()
      let failed = 0
      const timer = setTimeout(() => { resolve(null) }, Math.max(0, waitMs))
      const settle = (): void => {
        if (answers.size >= quorum) {
          clearTimeout(timer)
          resolve(answers)
        } else if (failed > clients.length - quorum) {
          clearTimeout(timer)
          resolve(null)
        }
      }
      clients.forEach((client, node) => {
        op(client).then(value => { answers.set(node, value); settle() }, () => { failed++; settle() })
      })
    })
  }

  async function readNow (key: string): Promise<ReturnCounts | null> {
    const values = await onQuorum(async client => await client.get(counterKey(key)), options.timeoutMs)
    if (values === null) return null
    return new Map([...values].map(([node, value]) => [node, value === null ? 0 : Number(value)]))
  }

  return {
    read (key, deadline) {
      let read = pending.get(key)
      if (read === undefined) {
        // issued after this turn's requests arrived, so it is current for every one of them
        read = new Promise<void>(resolve => setImmediate(resolve)).then(async () => {
          pending.delete(key)
          return await readNow(key)
        })
        pending.set(key, read)
      }
      if (deadline === undefined) return read
      // the shared read waits its own timeout; this caller, no later than its deadline
      const shared = read
      return new Promise(resolve => {
        const timer = setTimeout(() => { resolve(null) }, Math.max(0, waitMs(deadline)))
        void shared.then(counts => { clearTimeout(timer); resolve(counts) })
      })
    },

    async announce (key, deadline) {
      const counted = await onQuorum(async client => {
        const results = await client.multi().incr(counterKey(key)).pexpire(counterKey(key), keepMs).exec()
        const failure = results === null ? new Error('MULTI aborted') : results.find(([err]) => err !== null)?.[0]
        if (failure != null) throw failure
      }, waitMs(deadline))
      if (counted === null) throw new Error(`seat return of ${key} not counted by a majority of the lock servers`)
    }
  }
}
