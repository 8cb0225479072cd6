/**
 * The booking service: the domain entry point the routes call, always with the
 * principal asking (lib/domain/access.ts decides what it may do). Writes to a section
 * (bookings, holds, confirmations, cancellations, expiries) go through the
 * section batcher, so a crowd of them costs a few locks and transactions;
 * reads go to the store.
 */
import { bookingScope, bookingUser, cancelAccess, confirmAccess, maySeeBooking, scopedIdempotencyKey } from '../domain/access.ts'
import { publicBooking, replayDecision, type BookingRequest, type Decision, type StoredBooking } from '../domain/allocation.ts'
import type { Principal } from '../domain/principal.ts'
import {
  ForbiddenError, HoldExpiredError, IdempotencyKeyReusedError, InvalidStateError, NotFoundError, SoldOutError, LimitExceededError,
  SaleNotOpenError, SaleClosedError, type DomainError
} from '../domain/errors.ts'
import type { Locker } from '../cluster/locker.ts'
import type { Metrics } from '../support/metrics.ts'
import { MAX_QTY, type Booking, type BookingListAsk, type Page } from '../api/schemas.ts'
import { listPage, listQuery } from '../domain/list-cursor.ts'
import type { SectionBatchResult } from '../store/section-batch.ts'
import type { OpResult, SectionOp } from '../domain/section-ops.ts'
import { sectionOfBookingId } from '../domain/ids.ts'
import { createSectionEvents } from './section-events.ts'
import type { SeatReturns } from '../cluster/seat-returns.ts'
import { createSectionBatcher, type BatchOutcome } from '../batching/section-batcher.ts'
import type { SectionRef } from '../domain/section-ops.ts'
import { WORK_MS } from '../support/deadline.ts'
import { sectionLockKey } from '../cluster/locker.ts'
import type { Store } from '../store/store.ts'
import type { WaitStatus } from '../domain/waitlist.ts'

export interface BookingServiceOptions {
  store: Store
  locker: Locker
  metrics: Metrics
  /** the seat-return counters shared by the instances (with Redis); absent with one instance */
  returns?: SeatReturns
  /** told when a return of seats could not be counted by a majority of the lock servers */
  onReturnUncounted?: (err: unknown) => void
  /** most queued operations decided in one transaction, over all its sections; 1 = one transaction per operation */
  batchMax: number
  /** most batches run at once (each holds a database connection) */
  batchConcurrency: number
  /** how long a request may wait for its section (queue and lock) before BUSY */
  lockWaitMs: number
  /** how long a section seen sold out is answered from memory; seats given back end it at once */
  soldOutCacheMs: number
  /** a hold's length when its event sets no holdSeconds */
  holdTtlMs: number
  /** a waiting-list offer's length when its event sets no waitlistOfferSeconds */
  waitlistOfferMs?: number
  clock?: () => number
}

/** What a client asks to book: a customer may leave userId out (it books as itself). */
export interface BookingAsk {
  eventId: string
  sectionId: string
  qty: number
  userId?: string
  /** the client's Idempotency-Key, as sent */
  idempotencyKey?: string
  /** hold the seats until paid (confirm) instead of booking them at once */
  hold?: boolean
}

export interface BookingResult {
  booking: Booking
  /** true when an Idempotency-Key matched an earlier booking: nothing new was sold */
  replayed: boolean
}

/** A booking's section, and the booking itself when it was read to find it. */
interface Located { section: SectionRef, seen?: StoredBooking }

/** An entry's move as the offers metric counts it (an entry leaving while waiting had no offer). */
const WAITLIST_OUTCOMES: Partial<Record<WaitStatus, string>> = {
  offered: 'made', confirmed: 'confirmed', lapsed: 'lapsed', left: 'declined', skipped: 'skipped'
}

/** Sections whose event this instance remembers (a few MB at most): confirms and cancels of their bookings skip a read. */
const SECTIONS_KEPT = 100_000

const SOLD_OUT: Decision = { kind: 'sold_out', remaining: 0 }
/** The same answer, given from the sold-out memory (told apart by identity, for the metrics). */
const SOLD_OUT_FROM_MEMORY: Decision = { kind: 'sold_out', remaining: 0 }

/**
 * A sale not yet open is answered from memory until this long before it
 * opens by the section's last batch's reckoning (the time to the opening on
 * the database's clock, counted from before that batch was sent on this
 * instance's): from then on every booking goes to its batch, and the
 * database's clock decides the first. Covers a clock that runs at another rate.
 */
export const OPENING_MARGIN_MS = 1000
/** How long a sale seen not open is remembered at most (a change of the event ends it at once anyway). */
const NOT_OPEN_CACHE_MS = 60_000

/**
 * The error a section's refusal answers a booking or a join with (the same
 * for both): over the event's maxPerUser, its sale not open or over, or no
 * such section (or a draft's: to buyers it does not exist).
 */
export function sectionRefusal (result: OpResult, section: SectionRef, qty: number): DomainError {
  switch (result.kind) {
    case 'limit_exceeded': return new LimitExceededError(result.allowed, qty)
    case 'not_open': return new SaleNotOpenError(result.opensAt)
    case 'closed': return new SaleClosedError()
    default: return new NotFoundError('Section', `${section.sectionId} of event ${section.eventId}`)
  }
}

export function createBookingService (options: BookingServiceOptions) {
  const { store, metrics, returns, lockWaitMs } = options
  const clock = options.clock ?? Date.now
  /** A request arriving now waits for its section until this (epoch ms), then BUSY. */
  const lockDeadline = (): number => clock() + lockWaitMs
  /** A request arriving now is answered by this (epoch ms, the wall clock the store's deadlines use): its reads end then, answered or not. */
  const answerDeadline = (): number => Date.now() + lockWaitMs + WORK_MS
  const sectionEvents = createSectionEvents(SECTIONS_KEPT)
  const sections = createSectionBatcher<SectionOp, OpResult>({
    ...options,
    concurrency: options.batchConcurrency,
    inProcessStore: store.kind === 'embedded',
    async run (groups, deadline) {
      const started = Date.now()
      let batches: SectionBatchResult[]
      try {
        batches = await store.sectionsBatch(groups.map(({ section, items }) => ({ ...section, ops: items, offerDefaultMs: options.waitlistOfferMs })), deadline)
      } catch (err) {
        // the batch may have committed (its answer lost): seats it gave back are announced as if they
        // had come back; a needless announce costs another instance one batch, a missing one sales
        await announce(groups.map(g => g.section), deadline)
        throw err
      }
      // counted on the lock servers before anything of the batch is answered: then no
      // instance answers from its sold-out memory as if these seats were still gone
      await announce(groups.flatMap((g, i) => batches[i].returned === 0 ? [] : [g.section]), deadline)
      return batches.map(batch => {
        counted(batch)
        // moments of the database's clock, counted from before the batch began (this instance's)
        const untilMs = (at: Date): number => at.getTime() - batch.at.getTime() - (Date.now() - started)
        // until the section's first hold ends
        const stableForMs = batch.nextExpiry === null ? null : untilMs(batch.nextExpiry)
        const outcome: BatchOutcome<OpResult> = { results: batch.results, remaining: batch.remaining, stableForMs }
        const { refusal } = batch
        if (refusal?.kind === 'not_open') {
          const ms = untilMs(refusal.opensAt) - OPENING_MARGIN_MS
          if (ms > 0) outcome.refusedFor = { ms, refusal: { kind: 'not_open', opensAt: refusal.opensAt.toISOString() } }
        }
        return outcome
      })
    },
    soldOut: SOLD_OUT,
    refusalCacheMs: NOT_OPEN_CACHE_MS,
    // a retry of a booking made before the sell-out must still get its booking back, so keyed ones stay queued
    whenRefused: (op, refusal) => op.kind === 'book' && op.request.idempotencyKey === undefined ? refusal : undefined,
    // an edit may raise the capacity, a release give back holds, an entry leaving decline its offer
    returnsSeats: op => op.kind === 'cancel' || op.kind === 'expire' || op.kind === 'edit' || op.kind === 'release_holds' || op.kind === 'leave',
    seatsAsked: op => op.kind === 'book' ? op.request.qty : 0
  })

  /** Counts a return of seats in these sections on the lock servers (with several instances). */
  async function announce (sections: SectionRef[], deadline: number): Promise<void> {
    if (returns === undefined) return
    await Promise.all(sections.map(async ({ eventId, sectionId }) => {
      await returns.announce(sectionLockKey(eventId, sectionId), deadline).catch((err: unknown) => { options.onReturnUncounted?.(err) })
    }))
  }

  /** Counts what a batch found expired (every batch expires its section's due holds first) and what it did to the waiting list. */
  function counted (batch: SectionBatchResult): void {
    if (batch.waitlist.joined > 0 || batch.waitlist.changes.length > 0) countWaitlist(batch)
    if (batch.expired.length === 0) return
    metrics.holds.inc({ outcome: 'expired' }, batch.expired.length)
    for (const hold of batch.expired) {
      metrics.expiredSeats.inc(hold.qty)
      metrics.expiryLag.observe(Math.max(0, batch.at.getTime() - Date.parse(hold.expiresAt)) / 1000)
    }
  }

  function countWaitlist ({ waitlist, expired, at }: SectionBatchResult): void {
    if (waitlist.joined > 0) metrics.waitlistEntries.inc(waitlist.joined)
    // seats an offer was made of came back at the batch's moment, or, expired, at the first hold's end
    const backAt = Math.min(at.getTime(), ...expired.map(h => Date.parse(h.expiresAt)))
    for (const { from, to } of waitlist.changes) {
      const outcome = WAITLIST_OUTCOMES[to]
      if (outcome === undefined || (to === 'left' && from !== 'offered')) continue
      metrics.waitlistOffers.inc({ outcome })
      if (outcome === 'made') metrics.waitlistOfferDelay.observe(Math.max(0, at.getTime() - backAt) / 1000)
    }
  }

  /** The answer to a booking request, or the DomainError that refuses it. */
  function answer (section: SectionRef, request: BookingRequest, result: OpResult): BookingResult {
    switch (result.kind) {
      case 'confirmed':
      case 'held':
        if (result.kind === 'held') metrics.holds.inc({ outcome: 'held' })
        else metrics.bookedSeats.inc(result.booking.qty)
        sectionEvents.learn(request.sectionId, request.eventId)
        return { booking: result.booking, replayed: false }
      case 'replayed':
        return { booking: result.booking, replayed: true }
      case 'sold_out':
        metrics.soldOutAnswers.inc({ source: result === SOLD_OUT_FROM_MEMORY ? 'memory' : 'store' })
        throw new SoldOutError(result.remaining, request.qty)
      case 'key_reused':
        throw new IdempotencyKeyReusedError()
      default:
        throw sectionRefusal(result, section, request.qty)
    }
  }

  /** A booking request decided by its section's next batch, or, if the section is known to refuse it, by its idempotency key. */
  async function decide (section: SectionRef, request: BookingRequest, deadline: number): Promise<BookingResult> {
    const refusal = request.idempotencyKey === undefined ? undefined : await sections.refusalNow(section)
    if (refusal === undefined || request.idempotencyKey === undefined) {
      return answer(section, request, await sections.submit(section, { kind: 'book', request }, deadline))
    }
    // only a replay of a booking made before can still succeed
    const stored = await store.findByIdempotencyKey(request.idempotencyKey, answerDeadline())
    return answer(section, request, stored !== null ? replayDecision(stored, request) : refusal === SOLD_OUT ? SOLD_OUT_FROM_MEMORY : refusal)
  }

  /** The answer a refusal remembered gives a booking without a key: no lock, no transaction, no throw. */
  function fromMemory (refusal: OpResult, section: SectionRef, qty: number): Promise<BookingResult> {
    if (refusal === SOLD_OUT) return soldOutFromMemory(qty)
    // one error per refusal remembered, as for the sold-out storm: the opening rush allocates none
    let error = memoryErrors.get(refusal)
    if (error === undefined) {
      error = sectionRefusal(refusal, section, qty)
      memoryErrors.set(refusal, error)
    }
    const refused = error
    return new Promise((_resolve, reject) => { setImmediate(reject, refused) })
  }
  /** The error each remembered refusal answers with, kept while the memory holds that refusal. */
  const memoryErrors = new WeakMap<OpResult, DomainError>()

  /**
   * The section of a booking named by id: from the id and this instance's
   * memory of its section's event, else read. Whether the principal may act
   * on it is decided by the section's batch, on the booking as it reads it.
   * Null: no such booking.
   */
  function sectionOfBooking (id: string): Located | null | Promise<Located | null> {
    const sectionId = sectionOfBookingId(id)
    const eventId = sectionId === null ? undefined : sectionEvents.eventOf(sectionId)
    // known at once: queued in its section as it arrives, so first come is first served
    if (sectionId !== null && eventId !== undefined) return { section: { eventId, sectionId } }
    return store.getBooking(id, answerDeadline()).then(booking => {
      if (booking === null) return null
      sectionEvents.learn(booking.sectionId, booking.eventId)
      // read after the request came: its batch may decide from it rather than read it again
      return { section: { eventId: booking.eventId, sectionId: booking.sectionId }, seen: booking }
    })
  }

  /**
   * The sold-out storm's refusals, one per qty, made once: answering from
   * memory allocates no Error. Sharing is safe: a SoldOutError is never
   * changed once made.
   */
  const soldOutErrors = new Map<number, SoldOutError>()

  /**
   * The sold-out storm's answer: no lock, no transaction, no throw (an
   * exception unwinding an async function costs ~7% of it). It is given once
   * this turn of the event loop has read its sockets (setImmediate), so the
   * turn's answers are written together after its requests were read: an
   * answer written from inside its request's read costs the server about
   * twice as much per request in the embedded sold-out storm (48-52% -> 84-88%
   * of /health). Rejected only once its caller has a handler: no
   * unhandled-rejection bookkeeping.
   */
  function soldOutFromMemory (qty: number): Promise<BookingResult> {
    metrics.soldOutAnswers.inc({ source: 'memory' })
    let refusal = soldOutErrors.get(qty)
    if (refusal === undefined) {
      refusal = new SoldOutError(0, qty)
      // the schema's qty range: the map stays that small
      if (Number.isInteger(qty) && qty >= 1 && qty <= MAX_QTY) soldOutErrors.set(qty, refusal)
    }
    const error = refusal
    return new Promise((_resolve, reject) => { setImmediate(reject, error) })
  }

  return {
    /** The event of each section, learnt from the store's answer: confirms and cancels of their bookings skip a read. */
    learnSections (eventId: string, sectionIds: readonly string[]): void {
      for (const sectionId of sectionIds) sectionEvents.learn(sectionId, eventId)
    },

    /** An operation on a section beside bookings (an edit, a release of a cancelled event's holds), decided by its batch. */
    async submit (section: SectionRef, op: SectionOp): Promise<OpResult> {
      return await sections.submit(section, op, lockDeadline())
    },

    /**
     * These sections' event changed beside their batches (status, window,
     * rules): what any instance remembers of them ends before this resolves
     * (here at once; elsewhere through the seat-return counters).
     */
    async changed (changedSections: readonly SectionRef[]): Promise<void> {
      for (const section of changedSections) sections.changed(section)
      await announce([...changedSections], answerDeadline())
    },

    /** One booking, if the principal may see it: to anyone else it does not exist. */
    async getBooking (actor: Principal, id: string): Promise<Booking> {
      const booking = await store.getBooking(id, answerDeadline())
      if (booking === null || !maySeeBooking(actor, booking)) throw new NotFoundError('Booking', id)
      return publicBooking(booking)
    },

    /** The bookings the principal may see, filtered by the query. */
    async listBookings (actor: Principal, ask: BookingListAsk): Promise<Page<Booking>> {
      const { cursor: _, ...filters } = ask
      const query = { ...filters, ...listQuery(ask, 'bookings') }
      const scope = bookingScope(actor)
      if (scope === null) throw new ForbiddenError('This token may not list bookings')
      // asking for another user's bookings: there are none to see
      if (scope.userId !== undefined && query.userId !== undefined && query.userId !== scope.userId) {
        return listPage([], 0, query)
      }
      const page = await store.listBookings({ ...query, ...scope }, answerDeadline())
      return { ...page, items: page.items.map(publicBooking) }
    },

    /** Books seats for the user the principal may book for: resolves with the booking, or rejects with a DomainError (SOLD_OUT, BUSY, FORBIDDEN, ...). */
    book (actor: Principal, ask: BookingAsk): Promise<BookingResult> {
      const { eventId, sectionId, qty, idempotencyKey, hold } = ask
      const userId = bookingUser(actor, ask.userId)
      if (typeof userId !== 'string') return Promise.reject(userId)
      const section = { eventId, sectionId }
      const request: BookingRequest = { eventId, sectionId, qty, userId }
      if (hold === true) request.holdDefaultMs = options.holdTtlMs
      if (idempotencyKey !== undefined) {
        request.idempotencyKey = scopedIdempotencyKey(actor, idempotencyKey)
        return decide(section, request, lockDeadline())
      }
      // The sold-out storm and the opening rush: answered from memory (checked current across instances),
      // with no lock and no transaction.
      const refusal = sections.refusalNow(section)
      if (refusal === undefined) return decide(section, request, lockDeadline())
      if (!(refusal instanceof Promise)) return fromMemory(refusal, section, qty)
      // the wait for the check counts against the request's deadline: taken now, as it arrived
      const deadline = lockDeadline()
      return refusal.then(known => known === undefined ? decide(section, request, deadline) : fromMemory(known, section, qty))
    },

    /**
     * Confirms a hold (its owner, a service, an admin) with the payment's
     * reference; the same reference again gets the same answer. A hold past
     * its expiresAt is expired by the database in the same batch: HOLD_EXPIRED.
     */
    async confirm (actor: Principal, id: string, paymentRef?: string): Promise<Booking> {
      const deadline = lockDeadline()
      const located = sectionOfBooking(id)
      const found = located instanceof Promise ? await located : located
      if (found === null) throw new NotFoundError('Booking', id)
      const op: SectionOp = { kind: 'confirm', bookingId: id, access: booking => confirmAccess(actor, booking) }
      if (paymentRef !== undefined) op.paymentRef = paymentRef
      if (found.seen !== undefined) op.seen = found.seen
      const result = await sections.submit(found.section, op, deadline)
      switch (result.kind) {
        case 'hold_confirmed':
          if (result.changed) {
            metrics.holds.inc({ outcome: 'confirmed' })
            metrics.bookedSeats.inc(result.booking.qty)
            const confirmedAt = Date.parse(result.booking.confirmedAt ?? result.booking.createdAt)
            metrics.holdConfirmSeconds.observe(Math.max(0, confirmedAt - Date.parse(result.booking.createdAt)) / 1000)
          }
          return result.booking
        case 'hold_expired':
          throw new HoldExpiredError(id)
        case 'forbidden':
          throw new ForbiddenError('Only the booking\'s owner, a service or an admin confirms it')
        case 'invalid_state':
          throw new InvalidStateError(id, result.booking.status, result.booking.status === 'confirmed'
            ? `Booking ${id} is already confirmed with another paymentRef`
            : `Booking ${id} is ${result.booking.status}: only a held booking can be confirmed`)
        default:
          throw new NotFoundError('Booking', id)
      }
    },

    /** Expires the section's due holds now (the expiry sweeper). */
    async sweep (section: SectionRef): Promise<void> {
      await sections.submit(section, { kind: 'expire' })
    },

    /** Cancels a booking the principal may cancel: a hold is released, a confirmed booking cancelled, the seats go back. Cancelling again changes nothing. */
    async cancel (actor: Principal, id: string): Promise<Booking> {
      const deadline = lockDeadline()
      const located = sectionOfBooking(id)
      const found = located instanceof Promise ? await located : located
      if (found === null) throw new NotFoundError('Booking', id)
      const op: SectionOp = { kind: 'cancel', bookingId: id, access: booking => cancelAccess(actor, booking) }
      if (found.seen !== undefined) op.seen = found.seen
      const result = await sections.submit(found.section, op, deadline)
      if (result.kind !== 'cancelled') throw new NotFoundError('Booking', id)
      if (result.changed) {
        if (result.from === 'held') metrics.holds.inc({ outcome: 'released' })
        metrics.cancelledSeats.inc(result.booking.qty)
      }
      return result.booking
    },

    /** Resolves once every queued operation has been decided (graceful shutdown). */
    drain: async (): Promise<void> => { await sections.drain() }
  }
}

export type BookingService = ReturnType<typeof createBookingService>
