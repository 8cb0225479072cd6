/**
 * Per-section queues: a crowd of operations on one section becomes a few
 * batches, each decided under one section lock in one transaction. Generic
 * over the operation: `run` decides a batch, the batcher only queues, takes
 * batches in arrival order, keeps each item's deadline (then BUSY) and the
 * section's sold-out memory, kept honest across instances by the seat-return
 * counters when there are several (lib/seat-returns.ts).
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { WORK_MS } from './deadline.ts'
import { BusyError } from './errors.ts'
import { LockUnavailableError, sectionLockKey, type Locker } from './lock/locker.ts'
import type { Metrics } from './metrics.ts'
import { unchangedSince, type ReturnCounts, type SeatReturns } from './seat-returns.ts'
import { createSoldOutMemory } from './sold-out-memory.ts'

export interface SectionRef {
  eventId: string
  sectionId: string
}

export interface BatchOutcome<R> {
  /** one result per item, in order */
  results: R[]
  /** seats left once the batch committed: 0 makes the section known sold out, more forgets it; null when unknown */
  remaining: number | null
  /** how long from the batch on the section's seats stay as they are without a write (its first hold's end); null: indefinitely */
  stableForMs: number | null
}

export interface SectionBatcherOptions<T, R> {
  locker: Locker
  metrics: Pick<Metrics, 'queueDepth' | 'batchSize' | 'lockAcquire' | 'lockFailures' | 'soldOutInvalidations'>
  /** most queued items of one section decided in one batch; 1 = one lock and one transaction per item */
  batchMax: number
  /** how long an item may wait for its section (queue and lock) before BUSY */
  lockWaitMs: number
  /** how long a section seen sold out is remembered */
  soldOutCacheMs: number
  /** the seat-return counters shared by the instances; absent with one instance (its own batches see every return) */
  returns?: SeatReturns
  clock?: () => number
  /** decides one batch of one section's items by `deadline` (epoch ms: its first item's, past which it is answered); called while holding the section lock */
  run: (section: SectionRef, items: T[], deadline: number) => Promise<BatchOutcome<R>>
  /** the answer for a queued item once its section is known sold out; undefined keeps it queued */
  whenSoldOut: (item: T) => R | undefined
  /** seats an item may take: a batch that could take the section's last seats reads the seat-return counters first */
  seatsAsked: (item: T) => number
}

interface Pending<T, R> {
  item: T
  /** how long it may wait for its section; its batch then has WORK_MS to answer it */
  deadline: number
  resolve: (result: R) => void
  reject: (err: Error) => void
}

interface Queue<T, R> {
  section: SectionRef
  pending: Array<Pending<T, R>>
  /** seats left after this instance's last batch of the section, while it stays busy */
  remaining?: number | null
}

const RETRY_AFTER_SECONDS = 1
/** Longest one instance keeps a busy section's lock over back-to-back batches (well under any lock TTL). */
const TURN_MS = 50

const nextTurnOfLoop = async (): Promise<void> => { await new Promise<void>(resolve => setImmediate(resolve)) }

export function createSectionBatcher<T, R> (options: SectionBatcherOptions<T, R>) {
  const { locker, metrics, batchMax, lockWaitMs, run, whenSoldOut, seatsAsked, returns } = options
  const clock = options.clock ?? Date.now
  const soldOut = createSoldOutMemory(options.soldOutCacheMs, clock)
  const queues = new Map<string, Queue<T, R>>()
  const running = new Map<string, Promise<void>>()

  /** Runs the batch under the section lock, timing the wait; LockUnavailableError (counted) when not had in time. */
  async function underLock<O> (key: string, waitMs: number, fn: () => Promise<O>): Promise<O> {
    const start = clock()
    try {
      return await locker.withLock(key, waitMs, async () => {
        metrics.lockAcquire.observe((clock() - start) / 1000)
        return await fn()
      })
    } catch (err) {
      if (err instanceof LockUnavailableError) {
        metrics.lockAcquire.observe((clock() - start) / 1000)
        metrics.lockFailures.inc({ reason: err.reason })
      }
      throw err
    }
  }

  /** Answers the queued items that a sold-out section can answer at once. */
  function shedSoldOut (queue: Queue<T, R>): void {
    const keep: Array<Pending<T, R>> = []
    for (const entry of queue.pending) {
      const answer = whenSoldOut(entry.item)
      if (answer === undefined) keep.push(entry)
      else entry.resolve(answer)
    }
    metrics.queueDepth.dec(queue.pending.length - keep.length)
    queue.pending = keep
  }

  const earliestDeadline = (batch: Array<Pending<T, R>>): number => Math.min(...batch.map(e => e.deadline))

  /** The next batch: up to batchMax queued items, those already past their deadline answered BUSY; null when none is left. */
  function take (queue: Queue<T, R>): Array<Pending<T, R>> | null {
    const now = clock()
    const taken = queue.pending.splice(0, batchMax)
    metrics.queueDepth.dec(taken.length)
    const batch = taken.filter(e => e.deadline > now)
    for (const entry of taken) if (entry.deadline <= now) entry.reject(new BusyError(RETRY_AFTER_SECONDS, 'waited past the lock deadline'))
    return batch.length === 0 ? null : batch
  }

  /**
   * Each item is answered within WORK_MS of its deadline: a batch, begun by its
   * first item's, ends by then. Items' deadlines are on the batcher's clock; the
   * store's and the lock servers' on the wall clock.
   */
  const answerBy = (batch: Array<Pending<T, R>>): number => Date.now() + earliestDeadline(batch) + WORK_MS - clock()

  /**
   * The seat-return counters as they are before the batch reads its section,
   * when the batch may take the last seats (else, should other instances take
   * them first, the section is just not remembered sold out until the next batch).
   */
  function countsBefore (key: string, queue: Queue<T, R>, batch: Array<Pending<T, R>>): Promise<ReturnCounts | null> | undefined {
    if (returns === undefined) return undefined
    const asked = batch.reduce((sum, e) => sum + seatsAsked(e.item), 0)
    const known = queue.remaining
    return asked > 0 && (known === undefined || known === null || known <= asked) ? returns.read(key, answerBy(batch)) : undefined
  }

  /** Decides one batch under the section lock held by the caller; a store error fails its items only. */
  async function decide (key: string, queue: Queue<T, R>, batch: Array<Pending<T, R>>, before: Promise<ReturnCounts | null> | undefined): Promise<void> {
    let outcome: BatchOutcome<R>
    let counts: ReturnCounts | null = null
    try {
      // read before the batch reads the section: a return counted after this is seen as a change;
      // counters not read by the deadline are unknown, and the section is then not remembered sold out
      if (before !== undefined) counts = await before
      outcome = await run(queue.section, batch.map(e => e.item), answerBy(batch))
    } catch (err) {
      for (const entry of batch) entry.reject(err as Error)
      return
    }

    metrics.batchSize.observe(batch.length)
    queue.remaining = outcome.remaining
    outcome.results.forEach((result, i) => batch[i].resolve(result))
    if (outcome.remaining === 0) {
      if (returns === undefined) {
        soldOut.remember(key, null, outcome.stableForMs)
        shedSoldOut(queue)
      } else if (counts !== null) {
        // queued items arrived after the counters were read: the next batch decides them
        soldOut.remember(key, counts, outcome.stableForMs)
      }
    } else if (outcome.remaining !== null) {
      // seats are there (given back by a cancel, a release, an expiry, or never gone): not sold out
      soldOut.forget(key)
    }
  }

  /**
   * One turn with the section's lock: batches back to back while items keep
   * coming, for up to TURN_MS, so a busy section pays one lock round trip per
   * turn rather than per batch. True when the turn ended with items still queued.
   */
  async function turn (key: string, queue: Queue<T, R>): Promise<boolean> {
    const first = take(queue)
    if (first === null) return false
    const before = countsBefore(key, queue, first)
    const waitMs = earliestDeadline(first) - clock()
    try {
      return await underLock(key, waitMs, async () => {
        const ends = clock() + TURN_MS
        await decide(key, queue, first, before)
        while (queue.pending.length > 0 && clock() < ends) {
          // items read from their sockets meanwhile join the next batch
          await nextTurnOfLoop()
          const batch = take(queue)
          if (batch === null) break
          await decide(key, queue, batch, countsBefore(key, queue, batch))
        }
        return queue.pending.length > 0
      })
    } catch (err) {
      // only getting the lock throws here: the first batch was not run
      if (err instanceof LockUnavailableError && err.reason === 'timeout') {
        // the earliest deadline passed; items with time left go back to the front, in order
        const later = first.filter(e => e.deadline > clock())
        for (const entry of first) if (!later.includes(entry)) entry.reject(new BusyError(RETRY_AFTER_SECONDS))
        queue.pending.unshift(...later)
        metrics.queueDepth.inc(later.length)
        return false
      }
      const error = err instanceof LockUnavailableError ? new BusyError(RETRY_AFTER_SECONDS, 'lock servers unavailable') : err as Error
      for (const entry of first) entry.reject(error)
      return false
    }
  }

  /** Drains one section's queue turn by turn; a lone item waits no timer, only its turn of the event loop. */
  async function drainQueue (key: string, queue: Queue<T, R>): Promise<void> {
    try {
      while (queue.pending.length > 0) {
        // One turn of the event loop first: requests already read from their sockets
        // join this batch. Without it an in-process store (PGlite answers without
        // yielding) would decide one request per batch.
        await nextTurnOfLoop()
        // a turn cut short with work left: other instances' pollers get the lock first
        if (await turn(key, queue) && locker.handoverMs > 0) await sleep(locker.handoverMs)
      }
    } finally {
      queues.delete(key)
      running.delete(key)
    }
  }

  return {
    /**
     * Queues an item for its section's next batch; resolves with its result,
     * rejects with BusyError or a store error. It waits for its section until
     * `deadline` (epoch ms; by default lockWaitMs from now), and is answered
     * within WORK_MS after that whatever the lock servers and the store do.
     */
    async submit (section: SectionRef, item: T, deadline = clock() + lockWaitMs): Promise<R> {
      const key = sectionLockKey(section.eventId, section.sectionId)
      return await new Promise<R>((resolve, reject) => {
        let queue = queues.get(key)
        if (queue === undefined) {
          queue = { section, pending: [] }
          queues.set(key, queue)
        }
        queue.pending.push({ item, deadline, resolve, reject })
        metrics.queueDepth.inc()
        if (!running.has(key)) running.set(key, drainQueue(key, queue))
      })
    },

    /**
     * Whether the section is known sold out now: true or false at once with one
     * instance; with several, a promise that checks no seats were returned
     * anywhere since the section was seen sold out (else the memory ends).
     */
    soldOutNow (section: SectionRef): boolean | Promise<boolean> {
      const key = sectionLockKey(section.eventId, section.sectionId)
      const counts = soldOut.get(key)
      if (counts === undefined) return false
      if (returns === undefined || counts === null) return true
      return returns.read(key).then(now => {
        if (now !== null && unchangedSince(counts, now)) return true
        // unknown (too few servers answered) is not proof: ask the database, keep the memory
        if (now !== null && soldOut.get(key) === counts) {
          soldOut.forget(key)
          metrics.soldOutInvalidations.inc()
        }
        return false
      })
    },

    /** Resolves once every queued item has been decided (graceful shutdown). */
    async drain (): Promise<void> {
      while (running.size > 0) await Promise.allSettled([...running.values()])
    }
  }
}
