/**
 * Sections this instance saw refusing every new booking (sold out, or their
 * sale not yet open), remembered for a while so a storm of requests for them
 * is answered without the lock or the database. Each entry keeps the refusal
 * to give and the seat-return counters read before the batch that saw it
 * (lib/cluster/seat-returns.ts: a return of seats, or a change of the event,
 * raises them), or null when one instance is all there is.
 */
import type { ReturnCounts } from '../cluster/seat-returns.ts'

export interface Remembered<R> {
  refusal: R
  /** the counters the entry holds only while they are unchanged; null: none needed */
  counts: ReturnCounts | null
}

export interface RefusalMemory<R> {
  /** undefined when not remembered */
  get: (key: string) => Remembered<R> | undefined
  /** for `forMs` (nothing when it is not positive) */
  remember: (key: string, entry: Remembered<R>, forMs: number) => void
  forget: (key: string) => void
}

export function createRefusalMemory<R> (clock: () => number): RefusalMemory<R> {
  const entries = new Map<string, { until: number, entry: Remembered<R> }>()
  return {
    get (key) {
      const kept = entries.get(key)
      if (kept === undefined) return undefined
      if (kept.until > clock()) return kept.entry
      entries.delete(key)
      return undefined
    },
    remember (key, entry, forMs) {
      if (forMs > 0) entries.set(key, { until: clock() + forMs, entry })
    },
    forget (key) {
      entries.delete(key)
    }
  }
}
