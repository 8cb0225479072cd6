/**
 * The MongoDB store: native driver, one document per event with its sections
 * embedded, bookings in their own collection. The guarded `$inc` on the
 * section (remaining >= taken - returned) inside a snapshot transaction keeps
 * seats from being sold twice; the distributed lock only spares transactions
 * from write conflicts on the event document.
 */
import { ObjectId, type ClientSession, type MongoClient } from 'mongodb'
import type { SectionTx } from '../section-batch.ts'
import type { StoreDriver } from './driver.ts'
import {
  BOOKING_INDEXES, BOOKINGS, EVENT_INDEXES, EVENTS, NEWEST_FIRST, TRANSACTION_OPTIONS,
  bookingFromDocument, bookingListFilter, bookingToDocument, cancelBookingUpdate, decrementSection,
  eventFromDocument, eventToDocument, incrementSection, isMongoUnavailable, isRetryableMongoError,
  parseId, sectionProjection, supportsTransactions, type BookingDocument, type EventDocument
} from './mongo-documents.ts'
import { createStore, type Store } from './store.ts'
import type { StoreObserver } from './store-errors.ts'

function mongoDriver (client: MongoClient): StoreDriver {
  const db = client.db()
  const events = db.collection<EventDocument>(EVENTS)
  const bookings = db.collection<BookingDocument>(BOOKINGS)

  function sectionTx (session: ClientSession, eventId: string, sectionId: string): SectionTx {
    const eid = parseId(eventId)
    const sid = parseId(sectionId)
    return {
      async lock () {
        if (eid === null || sid === null) return null
        // a snapshot read: a concurrent writer of the event makes one of the two commits fail and retry
        const event = await events.findOne({ _id: eid }, { session, projection: { ...sectionProjection(sid), ownerId: 1 } })
        const section = event?.sections?.[0]
        return section === undefined ? null : { remaining: section.remaining, price: section.price, owner: event?.ownerId ?? '' }
      },
      async findKeys (keys) {
        const docs = await bookings.find({ idempotencyKey: { $in: keys } }, { session }).toArray()
        return docs.map(bookingFromDocument)
      },
      async lockBookings (ids) {
        if (sid === null) return []
        const oids = ids.flatMap(id => parseId(id) ?? [])
        const docs = await bookings.find({ _id: { $in: oids }, sectionId: sid }, { session }).toArray()
        return docs.map(bookingFromDocument)
      },
      async apply ({ taken, returned, inserts, cancelled, at }) {
        if (eid === null || sid === null) return null
        const net = taken - returned
        const { filter, update } = net >= 0 ? decrementSection(eid, sid, net) : incrementSection(eid, sid, -net)
        const updated = await events.findOneAndUpdate(filter, update, { session, projection: sectionProjection(sid), returnDocument: 'after' })
        const after = updated?.sections?.[0]
        if (after === undefined) return null
        // A racing duplicate idempotency key fails here (11000): the retry replays the stored booking.
        if (inserts.length > 0) await bookings.insertMany(inserts.map(bookingToDocument), { session })
        for (const id of cancelled) {
          const cancel = cancelBookingUpdate(ObjectId.createFromHexString(id), at)
          const { modifiedCount } = await bookings.updateOne(cancel.filter, cancel.update, { session })
          if (modifiedCount !== 1) return null
        }
        return after.remaining
      }
    }
  }

  return {
    kind: 'mongo',
    errors: { isRetryable: isRetryableMongoError, isUnavailable: isMongoUnavailable },

    async migrate () {
      const hello = await db.command({ hello: 1 })
      if (!supportsTransactions(hello)) {
        throw new Error('the MongoDB store needs a replica set (transactions); `docker compose up -d` starts one (rs0)')
      }
      // Named indexes with fixed options: creating them again is a no-op.
      await events.createIndexes(EVENT_INDEXES)
      await bookings.createIndexes(BOOKING_INDEXES)
    },

    async ping () {
      await db.command({ ping: 1 })
    },

    async insertEvent (event, ownerId) {
      // One document: the event and its sections are written atomically without a transaction.
      await events.insertOne(eventToDocument(event, ownerId))
    },

    async getEvent (id) {
      const oid = parseId(id)
      if (oid === null) return null
      const doc = await events.findOne({ _id: oid })
      return doc === null ? null : eventFromDocument(doc)
    },

    async listEvents ({ page, limit }) {
      const [docs, total] = await Promise.all([
        events.find({}).sort(NEWEST_FIRST).skip((page - 1) * limit).limit(limit).toArray(),
        events.countDocuments({})
      ])
      return { items: docs.map(eventFromDocument), total, page, limit }
    },

    async findByIdempotencyKey (key) {
      const doc = await bookings.findOne({ idempotencyKey: key })
      return doc === null ? null : bookingFromDocument(doc)
    },

    async getBooking (id) {
      const oid = parseId(id)
      if (oid === null) return null
      const doc = await bookings.findOne({ _id: oid })
      return doc === null ? null : bookingFromDocument(doc)
    },

    async listBookings (query) {
      const { page, limit } = query
      const filter = bookingListFilter(query)
      if (filter === null) return { items: [], total: 0, page, limit }
      const [docs, total] = await Promise.all([
        bookings.find(filter).sort(NEWEST_FIRST).skip((page - 1) * limit).limit(limit).toArray(),
        bookings.countDocuments(filter)
      ])
      return { items: docs.map(bookingFromDocument), total, page, limit }
    },

    /** withTransaction retries TransientTransactionError and unknown commit results itself. */
    async inSection (eventId, sectionId, fn) {
      const session = client.startSession()
      try {
        return await session.withTransaction(async (s) => await fn(sectionTx(s, eventId, sectionId)), TRANSACTION_OPTIONS)
      } finally {
        await session.endSession()
      }
    }
  }
}

/** A Store on MongoDB (a replica set); the client belongs to the caller, the database is the URI's. */
export function createMongoStore (client: MongoClient, options: { observer?: StoreObserver } = {}): Store {
  return createStore(mongoDriver(client), options.observer)
}
