/**
 * Rows read by id (bookings, events), many requests at once in one query: the
 * reads asked for in one turn of the event loop go to the database together,
 * and those of the same id share its answer. A crowd of confirms (a payment
 * provider's webhooks) each needs its booking's section before it can join
 * that section's batch; an on-sale's buyers keep reading the event's
 * availability. Read one by one, those reads cost more than the bookings.
 * Each answer is still read after its request came.
 */

/** Most ids in one query; more wait for the next. */
export const IDS_PER_READ = 500

interface Waiting<T> {
  resolve: (row: T | null) => void
  reject: (err: unknown) => void
}

/**
 * `fetch` reads the rows with these ids (those found, in any order; `_id`
 * names each); `read` runs it by a deadline (epoch ms), as the store runs
 * every read. Returns `get`: one row or null. A shared query is bounded by
 * the earliest deadline of the reads that share it, so each is answered by its own.
 */
export function createSharedReads<T extends { _id: string }> (
  fetch: (ids: string[], signal?: AbortSignal) => Promise<T[]>,
  read: <R>(fn: (signal?: AbortSignal) => Promise<R>, deadline?: number) => Promise<R>
) {
  let waiting = new Map<string, Array<Waiting<T>>>()
  /** the earliest deadline of the reads waiting; undefined while none has one */
  let earliest: number | undefined
  let scheduled = false

  function flush (): void {
    scheduled = false
    const all = [...waiting]
    const batch = all.slice(0, IDS_PER_READ)
    const deadline = earliest
    waiting = new Map(all.slice(IDS_PER_READ))
    // those left for the next query keep the earliest deadline: never later than theirs
    if (waiting.size > 0) schedule()
    else earliest = undefined
    const ids = batch.map(([id]) => id)
    read(async signal => await fetch(ids, signal), deadline).then(found => {
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
    /** The row with this id, or null, answered by `deadline` (epoch ms) if one is given. */
    get (id: string, deadline?: number): Promise<T | null> {
      return new Promise((resolve, reject) => {
        const waiters = waiting.get(id)
        if (waiters === undefined) waiting.set(id, [{ resolve, reject }])
        else waiters.push({ resolve, reject })
        if (deadline !== undefined) earliest = earliest === undefined ? deadline : Math.min(earliest, deadline)
        schedule()
      })
    }
  }
}
