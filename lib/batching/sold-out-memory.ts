/**
 * Sections this instance saw sold out, remembered for a while so a storm of
 * requests for them is answered without the lock or the database. Each entry
 * keeps the seat-return counters read before the batch that saw the section
 * sold out (lib/cluster/seat-returns.ts), or null when one instance is all there is.
 */
import type { ReturnCounts } from '../cluster/seat-returns.ts'

export interface SoldOutMemory {
  /** the entry's return counters (null: none needed); undefined when not remembered */
  get: (key: string) => ReturnCounts | null | undefined
  /** `forMs`: at most this long (a hold of the section expires then, and its seats come back); null: the full time */
  remember: (key: string, counts: ReturnCounts | null, forMs?: number | null) => void
  forget: (key: string) => void
}

export function createSoldOutMemory (ttlMs: number, clock: () => number): SoldOutMemory {
  const entries = new Map<string, { until: number, counts: ReturnCounts | null }>()
  return {
    get (key) {
      const entry = entries.get(key)
      if (entry === undefined) return undefined
      if (entry.until > clock()) return entry.counts
      entries.delete(key)
      return undefined
    },
    remember (key, counts, forMs = null) {
      const ms = forMs === null ? ttlMs : Math.min(ttlMs, forMs)
      if (ms > 0) entries.set(key, { until: clock() + ms, counts })
    },
    forget (key) {
      entries.delete(key)
    }
  }
}
