/**
 * The booking service: the domain entry point the routes call. It owns the
 * per-section queues that turn a crowd of requests for one section into a few
 * batches (one lock, one transaction, many bookings each), and the sold-out
 * memory that answers a sold-out section without the lock or the database.
 */
import { replayDecision, type BookingRequest, type Decision } from './allocation.ts'
import { BusyError, IdempotencyKeyReusedError, NotFoundError, SoldOutError } from './errors.ts'
import { LockUnavailableError, sectionLockKey, type Locker } from './lock/locker.ts'
import type { BookingOutcome, Metrics } from './metrics.ts'
import type { Booking, BookingListQuery, Event, EventInput, Page, PageQuery } from './schemas.ts'
import type { Store } from './store/store.ts'

export interface BookingServiceOptions {
  store: Store
  locker: Locker
  metrics: Metrics
  /** most queued requests of one section decided in one transaction; 1 = one transaction per booking */
  batchMax: number
  /** how long a request may wait for its section (queue and lock) before BUSY */
  lockWaitMs: number
  /** how long a section seen sold out is answered from memory; cancellations in this instance end it at once */
  soldOutCacheMs: number
  clock?: () => number
}

export interface BookingResult {
  booking: Booking
  /** true when an Idempotency-Key matched an earlier booking: nothing new was sold */
  replayed: boolean
}

interface Pending {
  request: BookingRequest
  deadline: number
  resolve: (result: BookingResult) => void
  reject: (err: Error) => void
}

interface SectionQueue {
  eventId: string
  sectionId: string
  pending: Pending[]
}

const RETRY_AFTER_SECONDS = 1

export function createBookingService (options: BookingServiceOptions) {
  const { store, locker, metrics, batchMax, lockWaitMs, soldOutCacheMs } = options
  const clock = options.clock ?? Date.now
  const queues = new Map<string, SectionQueue>()
  const running = new Map<string, Promise<void>>()
  const soldOutUntil = new Map<string, number>()

  function isSoldOut (key: string): boolean {
    const until = soldOutUntil.get(key)
    if (until === undefined) return false
    if (until > clock()) return true
    soldOutUntil.delete(key)
    return false
  }

  function count (outcome: BookingOutcome): void {
    metrics.bookings.inc({ outcome })
  }

  /** Turns one decision into the request's answer, counting it. */
  function settle (entry: Pick<Pending, 'request' | 'resolve' | 'reject'>, decision: Decision): void {
    switch (decision.kind) {
      case 'confirmed':
        count('confirmed')
        metrics.bookedSeats.inc(decision.booking.qty)
        entry.resolve({ booking: decision.booking, replayed: false })
        return
      case 'replayed':
        count('replayed')
        entry.resolve({ booking: decision.booking, replayed: true })
        return
      case 'sold_out':
        count('sold_out')
        entry.reject(new SoldOutError(decision.remaining, entry.request.qty))
        return
      case 'key_reused':
        count('invalid')
        entry.reject(new IdempotencyKeyReusedError())
    }
  }

  function fail (entry: Pending, err: Error): void {
    count(err instanceof BusyError ? 'busy' : err instanceof NotFoundError ? 'invalid' : 'error')
    entry.reject(err)
  }

  /**
   * Runs fn under the section lock, timing the wait and the transaction.
   * Throws LockUnavailableError (counted) when the lock is not had in time.
   */
  async function underLock<T> (key: string, waitMs: number, operation: string, fn: () => Promise<T>): Promise<T> {
    const start = clock()
    try {
      return await locker.withLock(key, waitMs, async () => {
        metrics.lockAcquire.observe((clock() - start) / 1000)
        const end = metrics.storeTransaction.startTimer({ store: store.kind, operation })
        try {
          return await fn()
        } finally {
          end()
        }
      })
    } catch (err) {
      if (err instanceof LockUnavailableError) {
        metrics.lockAcquire.observe((clock() - start) / 1000)
        metrics.lockFailures.inc({ reason: err.reason })
      }
      throw err
    }
  }

  /** Rejects queued requests without an idempotency key once the section is known sold out. */
  function answerSoldOutFromMemory (queue: SectionQueue): void {
    const keep: Pending[] = []
    for (const entry of queue.pending) {
      if (entry.request.idempotencyKey === undefined) settle(entry, { kind: 'sold_out', remaining: 0 })
      else keep.push(entry)
    }
    metrics.queueDepth.dec(queue.pending.length - keep.length)
    queue.pending = keep
  }

  async function runBatch (key: string, queue: SectionQueue): Promise<void> {
    const now = clock()
    const taken = queue.pending.splice(0, batchMax)
    metrics.queueDepth.dec(taken.length)
    const batch: Pending[] = []
    for (const entry of taken) {
      if (entry.deadline > now) batch.push(entry)
      else fail(entry, new BusyError(RETRY_AFTER_SECONDS, 'waited past the lock deadline'))
    }
    if (batch.length === 0) return

    const waitMs = Math.min(...batch.map(e => e.deadline)) - now
    let result
    try {
      result = await underLock(key, waitMs, 'book', async () =>
        await store.bookBatch(queue.eventId, queue.sectionId, batch.map(e => e.request)))
    } catch (err) {
      if (err instanceof LockUnavailableError && err.reason === 'timeout') {
        // the earliest deadline passed; requests with time left go back to the front, in order
        const later = batch.filter(e => e.deadline > clock())
        for (const entry of batch) if (!later.includes(entry)) fail(entry, new BusyError(RETRY_AFTER_SECONDS))
        queue.pending.unshift(...later)
        metrics.queueDepth.inc(later.length)
        return
      }
      const error = err instanceof LockUnavailableError
        ? new BusyError(RETRY_AFTER_SECONDS, 'lock servers unavailable')
        : err as Error
      for (const entry of batch) fail(entry, error)
      return
    }

    metrics.batchSize.observe(batch.length)
    if (result.decisions === null) {
      for (const entry of batch) fail(entry, new NotFoundError('Section', `${queue.sectionId} of event ${queue.eventId}`))
      return
    }
    result.decisions.forEach((decision, i) => settle(batch[i], decision))
    if (result.remaining === 0) {
      soldOutUntil.set(key, clock() + soldOutCacheMs)
      answerSoldOutFromMemory(queue)
    }
  }

  /** Drains one section's queue batch by batch; a lone request waits no timer, only its turn of the event loop. */
  async function drainQueue (key: string, queue: SectionQueue): Promise<void> {
    try {
      while (queue.pending.length > 0) {
        // One turn of the event loop first: requests already read from their sockets
        // join this batch. Without it an in-process store (PGlite answers without
        // yielding) would decide one request per batch.
        await new Promise<void>(resolve => setImmediate(resolve))
        await runBatch(key, queue)
      }
    } finally {
      queues.delete(key)
      running.delete(key)
    }
  }

  return {
    createEvent: async (input: EventInput): Promise<Event> => await store.createEvent(input),

    async getEvent (id: string): Promise<Event> {
      const event = await store.getEvent(id)
      if (event === null) throw new NotFoundError('Event', id)
      return event
    },

    listEvents: async (query: PageQuery): Promise<Page<Event>> => await store.listEvents(query),

    async getBooking (id: string): Promise<Booking> {
      const booking = await store.getBooking(id)
      if (booking === null) throw new NotFoundError('Booking', id)
      return booking
    },

    listBookings: async (query: BookingListQuery): Promise<Page<Booking>> => await store.listBookings(query),

    /** Books seats: resolves with the booking, or rejects with a DomainError (SOLD_OUT, BUSY, ...). */
    async book (request: BookingRequest): Promise<BookingResult> {
      const key = sectionLockKey(request.eventId, request.sectionId)
      if (isSoldOut(key)) {
        // a retry of a booking made before the sell-out must still get its booking back
        const stored = request.idempotencyKey === undefined ? null : await store.findByIdempotencyKey(request.idempotencyKey)
        return await new Promise((resolve, reject) => {
          settle({ request, resolve, reject }, stored === null ? { kind: 'sold_out', remaining: 0 } : replayDecision(stored, request))
        })
      }
      return await new Promise<BookingResult>((resolve, reject) => {
        let queue = queues.get(key)
        if (queue === undefined) {
          queue = { eventId: request.eventId, sectionId: request.sectionId, pending: [] }
          queues.set(key, queue)
        }
        queue.pending.push({ request, deadline: clock() + lockWaitMs, resolve, reject })
        metrics.queueDepth.inc()
        if (!running.has(key)) running.set(key, drainQueue(key, queue))
      })
    },

    /** Cancels a booking and returns its seats to the section; cancelling again changes nothing. */
    async cancel (id: string): Promise<Booking> {
      const booking = await store.getBooking(id)
      if (booking === null) throw new NotFoundError('Booking', id)
      if (booking.status === 'cancelled') return booking
      const key = sectionLockKey(booking.eventId, booking.sectionId)
      let result
      try {
        result = await underLock(key, lockWaitMs, 'cancel', async () => await store.cancelBooking(id))
      } catch (err) {
        if (err instanceof LockUnavailableError) throw new BusyError(RETRY_AFTER_SECONDS, err.reason === 'timeout' ? undefined : 'lock servers unavailable')
        throw err
      }
      if (result === null) throw new NotFoundError('Booking', id)
      soldOutUntil.delete(key)
      if (result.changed) metrics.cancelledSeats.inc(result.booking.qty)
      return result.booking
    },

    /** Resolves once every queued booking has been decided (graceful shutdown). */
    async drain (): Promise<void> {
      while (running.size > 0) await Promise.allSettled([...running.values()])
    }
  }
}

export type BookingService = ReturnType<typeof createBookingService>
