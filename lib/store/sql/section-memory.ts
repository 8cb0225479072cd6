/**
 * What this instance last knew of the sections it read or wrote: each one's
 * state then, and the database's clock then. A batch's first, unlocked try
 * takes a section known within `freshMs` from here instead of reading it
 * again (a round trip and a statement of the database's work per batch): its
 * guarded write proves the memory still true, each section at the version
 * known, or refuses, and the batch runs again as the locking transaction,
 * which reads. Stale, it costs a retry, never a wrong answer (the caller uses
 * it only where every decision is a guarded write). A section whose memory a
 * write found stale has another writer (another instance taking turns on it):
 * it is read, not recalled, for `sharedMs`, so instances sharing a section do
 * not pay a retry a turn.
 */
import type { SectionState } from '../../domain/section-ops.ts'
import type { SectionRef } from '../../domain/section-ops.ts'
import { LRUCache } from 'lru-cache'

/** Sections remembered at most (a hint: a few MB). */
const KEPT = 100_000

/** A section's state without the batch's moment, with the event it is of and its version then. */
export type KnownSection = Omit<SectionState, 'now'> & { eventId: string, version: number }

interface Entry {
  state: KnownSection
  /** performance.now() when it was read or written */
  at: number
}

export function createSectionMemory (freshMs: number, sharedMs: number, localClock: () => number = () => performance.now()) {
  const known = new LRUCache<string, Entry>({ max: KEPT })
  /** sections another writer changed behind the memory: read until then (localClock) */
  const shared = new LRUCache<string, number>({ max: KEPT })
  /** the database's clock at the last read or write, and this process's then */
  let anchor: { db: number, local: number } | undefined

  const fresh = (at: number, now: number): boolean => now - at < freshMs

  return {
    /** The sections as read (or written) just now, at the database's moment `dbNow`. */
    remember (sections: ReadonlyMap<string, KnownSection>, dbNow: Date): void {
      const local = localClock()
      anchor = { db: dbNow.getTime(), local }
      for (const [id, state] of sections) known.set(id, { state, at: local })
    },

    /**
     * A section's state known within freshMs, if any, and only for its own
     * event: a batch naming the section with another event's id is not
     * answered from memory (read, the section is not found).
     */
    recall ({ eventId, sectionId }: SectionRef): KnownSection | undefined {
      const entry = known.get(sectionId)
      if (entry === undefined || entry.state.eventId !== eventId) return undefined
      const now = localClock()
      return fresh(entry.at, now) && (shared.get(sectionId) ?? 0) <= now ? entry.state : undefined
    },

    /**
     * The database's clock now, from its last reading and this process's
     * clock since: behind it by that answer's way back (a write refuses a
     * moment ahead of the database's clock); undefined when that reading is
     * older than freshMs.
     */
    databaseNow (): Date | undefined {
      if (anchor === undefined) return undefined
      const local = localClock()
      return fresh(anchor.local, local) ? new Date(anchor.db + (local - anchor.local)) : undefined
    },

    /**
     * Forgets sections whose state is no longer known (a write refused, or of
     * unknown outcome). Marked stale, not deleted: lru-cache's delete of its
     * last entry clears all its slots (KEPT of them), which on a hot section,
     * written every batch, cost 30% more CPU per booking.
     */
    forget (sectionIds: Iterable<string>): void {
      for (const id of sectionIds) {
        const entry = known.peek(id)
        if (entry !== undefined) entry.at = -Infinity
      }
    },

    /** Sections recalled for a write that was refused: another writer has them; read them for sharedMs. */
    refused (sectionIds: Iterable<string>): void {
      const until = localClock() + sharedMs
      this.forget(sectionIds)
      for (const id of sectionIds) shared.set(id, until)
    }
  }
}

export type SectionMemory = ReturnType<typeof createSectionMemory>
