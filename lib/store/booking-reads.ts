/**
 * Bookings read by id, many requests at once in one query: the reads asked
 * for in one turn of the event loop go to the database together. A crowd of
 * confirms (a payment provider's webhooks) each needs its booking's section
 * before it can join that section's batch; read one by one, that read costs
 * more than the confirm's share of its batch.
 */
import type { StoredBooking } from '../allocation.ts'
import { beforeDeadline } from '../deadline.ts'

/** Most ids in one query; more wait for the next. */
export const IDS_PER_READ = 500

interface Waiting {
  resolve: (booking: StoredBooking | null) => void
  reject: (err: unknown) => void
}

/**
 * `fetch` reads the bookings with these ids (those found, in any order),
 * stopping at the signal. Returns `get`: one booking or null, settled once
 * its query is (by the latest deadline of the reads that share it; the caller
 * bounds its own wait).
 */
export function createBookingReads (fetch: (ids: string[], signal?: AbortSignal) => Promise<StoredBooking[]>) {
  let waiting = new Map<string, Waiting[]>()
  /** the latest deadline of the reads waiting; undefined once one has none */
  let latest: number | undefined = 0
  let scheduled = false

  function flush (): void {
    scheduled = false
    const batch = [...waiting].slice(0, IDS_PER_READ)
    const deadline = latest
    waiting = new Map([...waiting].slice(IDS_PER_READ))
    // those left for the next query keep the latest deadline: never shorter than theirs
    if (waiting.size > 0) schedule()
    else latest = 0
    const ids = batch.map(([id]) => id)
    beforeDeadline('read', deadline, async signal => await fetch(ids, signal)).then(found => {
      const byId = new Map(found.map(b => [b._id, b]))
      for (const [id, waiters] of batch) for (const w of waiters) w.resolve(byId.get(id) ?? null)
    }, (err: unknown) => {
      for (const [, waiters] of batch) for (const w of waiters) w.reject(err)
    })
  }

  function schedule (): void {
    if (scheduled) return
    scheduled = true
    setImmediate(flush)
  }

  return {
    /** The booking with this id, or null; `deadline` (epoch ms) keeps the shared query going at least that long. */
    get (id: string, deadline?: number): Promise<StoredBooking | null> {
      return new Promise((resolve, reject) => {
        const waiters = waiting.get(id)
        if (waiters === undefined) waiting.set(id, [{ resolve, reject }])
        else waiters.push({ resolve, reject })
        if (latest !== undefined) latest = deadline === undefined ? undefined : Math.max(latest, deadline)
        schedule()
      })
    }
  }
}
