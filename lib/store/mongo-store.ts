/**
 * The MongoDB store: native driver, one document per event with its sections
 * embedded, bookings in their own collection. The conditional `$inc` on the
 * section (remaining >= total) inside a snapshot transaction is the guard
 * against overselling; the distributed lock only spares transactions from
 * write conflicts on the event document.
 */
import type { ClientSession, MongoClient } from 'mongodb'
import { allocate, publicBooking, type BookingRequest, type StoredBooking } from '../allocation.ts'
import { RetryableConflict } from '../errors.ts'
import { newId } from '../ids.ts'
import type { Booking, BookingListQuery, Event, EventInput, Page, PageQuery } from '../schemas.ts'
import {
  BOOKING_INDEXES, BOOKINGS, EVENT_INDEXES, EVENTS, NEWEST_FIRST, TRANSACTION_OPTIONS,
  bookingFromDocument, bookingListFilter, bookingToDocument, cancelBookingUpdate, decrementSection,
  eventFromDocument, eventToDocument, incrementSection, isMongoUnavailable, isRetryableMongoError,
  parseId, sectionProjection, supportsTransactions, type BookingDocument, type EventDocument
} from './mongo-documents.ts'
import { newEvent, type BatchResult, type CancelResult, type Store, type StoreObserver } from './store.ts'
import { storeRunner } from './store-errors.ts'

/** The client belongs to the caller (plugins/mongo.ts), who closes it; the database is the URI's. */
export function createMongoStore (client: MongoClient, options: { observer?: StoreObserver } = {}): Store {
  const { observer } = options
  const db = client.db()
  const events = db.collection<EventDocument>(EVENTS)
  const bookings = db.collection<BookingDocument>(BOOKINGS)

  const run = storeRunner({ isRetryable: isRetryableMongoError, isUnavailable: isMongoUnavailable }, observer)
  const read = run.read

  /**
   * withTransaction retries TransientTransactionError and unknown commit results
   * itself; run.transaction adds the bounded retry for our own conflicts and key races.
   */
  async function transaction<T> (operation: string, fn: (session: ClientSession) => Promise<T>): Promise<T> {
    return await run.transaction(operation, async () => {
      const session = client.startSession()
      try {
        return await session.withTransaction(fn, TRANSACTION_OPTIONS)
      } finally {
        await session.endSession()
      }
    })
  }

  return {
    kind: 'mongo',

    async init () {
      await read(async () => {
        const hello = await db.command({ hello: 1 })
        if (!supportsTransactions(hello)) {
          throw new Error('the MongoDB store needs a replica set (transactions); `docker compose up -d` starts one (rs0)')
        }
        // Named indexes with fixed options: creating them again is a no-op.
        await events.createIndexes(EVENT_INDEXES)
        await bookings.createIndexes(BOOKING_INDEXES)
      })
    },

    // The client is closed by its owner.
    close: async () => {},

    async ping () {
      await read(() => db.command({ ping: 1 }))
    },

    async createEvent (input: EventInput) {
      const event = newEvent(input)
      // One document: the event and its sections are written atomically without a transaction.
      await read(() => events.insertOne(eventToDocument(event)))
      return event
    },

    async getEvent (id) {
      const oid = parseId(id)
      if (oid === null) return null
      const doc = await read(() => events.findOne({ _id: oid }))
      return doc === null ? null : eventFromDocument(doc)
    },

    async listEvents ({ page, limit }: PageQuery): Promise<Page<Event>> {
      const [docs, total] = await read(() => Promise.all([
        events.find({}).sort(NEWEST_FIRST).skip((page - 1) * limit).limit(limit).toArray(),
        events.countDocuments({})
      ]))
      return { items: docs.map(eventFromDocument), total, page, limit }
    },

    async bookBatch (eventId, sectionId, requests: readonly BookingRequest[]): Promise<BatchResult> {
      const eid = parseId(eventId)
      const sid = parseId(sectionId)
      if (eid === null || sid === null) return { decisions: null, remaining: 0 }
      return await transaction('book', async (session) => {
        const event = await events.findOne({ _id: eid }, { session, projection: sectionProjection(sid) })
        const section = event?.sections?.[0]
        if (section === undefined) return { decisions: null, remaining: 0 }

        const keys = [...new Set(requests.flatMap(r => r.idempotencyKey ?? []))]
        const existing = new Map<string, StoredBooking>()
        if (keys.length > 0) {
          const stored = await bookings.find({ idempotencyKey: { $in: keys } }, { session }).toArray()
          for (const doc of stored) existing.set(doc.idempotencyKey as string, bookingFromDocument(doc))
        }

        const allocation = allocate({
          remaining: section.remaining, unitPrice: section.price, requests, existing, now: new Date(), newId
        })
        if (allocation.taken === 0) return { decisions: allocation.decisions, remaining: section.remaining }

        const { filter, update } = decrementSection(eid, sid, allocation.taken)
        const updated = await events.findOneAndUpdate(filter, update, {
          session, projection: sectionProjection(sid), returnDocument: 'after'
        })
        const after = updated?.sections?.[0]
        // A snapshot write conflict normally aborts first; if not, decide again on fresh data.
        if (after === undefined) throw new RetryableConflict('remaining fell below the batch total')
        // A racing duplicate idempotency key fails here (11000): the retry replays the stored booking.
        await bookings.insertMany(allocation.inserts.map(bookingToDocument), { session })
        return { decisions: allocation.decisions, remaining: after.remaining }
      })
    },

    async findByIdempotencyKey (key) {
      const doc = await read(() => bookings.findOne({ idempotencyKey: key }))
      return doc === null ? null : bookingFromDocument(doc)
    },

    async getBooking (id) {
      const oid = parseId(id)
      if (oid === null) return null
      const doc = await read(() => bookings.findOne({ _id: oid }))
      return doc === null ? null : publicBooking(bookingFromDocument(doc))
    },

    async listBookings (query: BookingListQuery): Promise<Page<Booking>> {
      const { page, limit } = query
      const filter = bookingListFilter(query)
      if (filter === null) return { items: [], total: 0, page, limit }
      const [docs, total] = await read(() => Promise.all([
        bookings.find(filter).sort(NEWEST_FIRST).skip((page - 1) * limit).limit(limit).toArray(),
        bookings.countDocuments(filter)
      ]))
      return { items: docs.map(d => publicBooking(bookingFromDocument(d))), total, page, limit }
    },

    async cancelBooking (id): Promise<CancelResult | null> {
      const oid = parseId(id)
      if (oid === null) return null
      return await transaction('cancel', async (session) => {
        const found = await bookings.findOne({ _id: oid }, { session })
        if (found === null) return null
        if (found.status === 'cancelled') return { booking: publicBooking(bookingFromDocument(found)), changed: false }
        const cancel = cancelBookingUpdate(oid, new Date())
        const updated = await bookings.findOneAndUpdate(cancel.filter, cancel.update, { session, returnDocument: 'after' })
        if (updated === null) throw new RetryableConflict('booking changed while being cancelled')
        const giveBack = incrementSection(found.eventId, found.sectionId, found.qty)
        await events.updateOne(giveBack.filter, giveBack.update, { session })
        return { booking: publicBooking(bookingFromDocument(updated)), changed: true }
      })
    }
  }
}
