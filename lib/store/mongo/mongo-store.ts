/**
 * The MongoDB store: native driver, one document per event with its sections
 * embedded, bookings in their own collection. The guarded `$inc` on the
 * section (remaining >= taken - returned) inside a snapshot transaction keeps
 * seats from being sold twice; the distributed lock only spares transactions
 * from write conflicts on the event document. Every batch that changes
 * anything writes the event document, so of two concurrent batches on one
 * event (any section, any user's seats) one meets a write conflict and runs
 * again on fresh data; lockSection writes it first so that happens early.
 * A change of the event writes it too: no batch commits on rules read before.
 * The waiting list's entries are documents of their own, written only by
 * their section's batch: that write of the event document keeps two batches
 * of a section apart, each entry's move is guarded by its `from`.
 */
import type { ClientSession, MongoClient } from 'mongodb'
import type { SectionState } from '../../domain/section-ops.ts'
import type { SectionsTx } from '../section-batch.ts'
import type { StoreDriver } from '../driver.ts'
import {
  afterPosition, BOOKING_INDEXES, BOOKINGS, BY_POSITION, EVENT_INDEXES, EVENTS, FILL_SECTION_COUNTERS, FIRST_TO_EXPIRE, LAST_POSITION, NEWEST_FIRST,
  SECTIONS_WITHOUT_COUNTERS, TRANSACTION_OPTIONS, USER_SEATS, WAITLIST, WAITLIST_INDEXES, WAITLIST_ORDER,
  entryChangeUpdate, entryFromDocument, entryToDocument, namedEntriesFilter, waitingEntriesFilter, waitlistListFilter,
  bookingChangeUpdate, bookingFromDocument, bookingListFilter, bookingToDocument, dueHoldsFilter, dueSectionFromDocument,
  dueSectionsPipeline, eventChangeUpdate, eventFromDocument, eventListFilter, eventToDocument, eventUserSeatsFilter, isMongoUnavailable,
  isNamespaceExists, isRetryableMongoError, laterHoldsFilter, lockSection, parseBookingId, parseId, sectionProjection, sectionState,
  sectionFromDocument, sectionUpdate, serverTime, supportsTransactions, userSeatsCountPipeline, userSeatsDocuments, userSeatsId, userSeatsUpdate,
  type BookingDocument, type EventDocument, type UserSeatsDocument, type WaitEntryDocument
} from './documents.ts'
import { listPage } from '../../domain/list-cursor.ts'
import { createStore, type Store } from '../store.ts'
import { CHANGE_INDEXES, CHANGES, COUNTERS, WEBHOOK_INDEXES, WEBHOOKS, appendChanges, mongoChangeStore, type NewChange } from './change-feed.ts'
import { eventChangeRecord, eventCreatedRecord, packBookings } from '../../domain/changes.ts'
import type { StoreObserver } from '../store-errors.ts'

function mongoDriver (client: MongoClient): StoreDriver {
  const db = client.db()
  const events = db.collection<EventDocument>(EVENTS)
  const bookings = db.collection<BookingDocument>(BOOKINGS)
  const userSeats = db.collection<UserSeatsDocument>(USER_SEATS)
  const waitEntries = db.collection<WaitEntryDocument>(WAITLIST)

  /** withTransaction retries TransientTransactionError (write conflicts) and unknown commit results itself, calling fn again. */
  async function inTransaction<T> (fn: (session: ClientSession) => Promise<T>, signal?: AbortSignal): Promise<T> {
    const session = client.startSession()
    try {
      // past the request's deadline the caller has had its answer: no attempt (nor rerun) starts then
      return await session.withTransaction(async (s) => {
        signal?.throwIfAborted()
        return await fn(s)
      }, TRANSACTION_OPTIONS)
    } finally {
      await session.endSession()
    }
  }

  // A session runs one operation at a time: every call below is awaited before the next.
  function sectionsTx (session: ClientSession): SectionsTx {
    return {
      async lock (refs, ids) {
        const sections = new Map<string, SectionState>()
        let now: Date | undefined
        for (const { eventId, sectionId } of refs) {
          const eid = parseId(eventId)
          const sid = parseId(sectionId)
          if (eid === null || sid === null) continue
          const { filter, update, projection } = lockSection(eid, sid)
          const event = await events.findOneAndUpdate(filter, update, { session, projection, returnDocument: 'after' })
          const section = event === null ? null : sectionState(event)
          if (section === null) continue
          sections.set(sectionId, section)
          // the batch's moment: once every lock is had
          if (now === undefined || section.now > now) now = section.now
        }
        const oids = ids.flatMap(id => parseBookingId(id) ?? [])
        const sids = [...sections.keys()].flatMap(id => parseId(id) ?? [])
        const docs = oids.length === 0 || sids.length === 0 ? [] : await bookings.find({ _id: { $in: oids }, sectionId: { $in: sids } }, { session }).toArray()
        // no section found: nothing is decided at that moment, so this instance's clock will do
        return { sections, bookings: docs.map(bookingFromDocument), now: now ?? new Date() }
      },
      async dueHolds ({ sectionId }, now) {
        const sid = parseId(sectionId)
        if (sid === null) return { due: [], next: null }
        const due = await bookings.find(dueHoldsFilter(sid, now), { session }).toArray()
        const [later] = await bookings.find(laterHoldsFilter(sid, now), { session, projection: { expiresAt: 1 } })
          .sort(FIRST_TO_EXPIRE).limit(1).toArray()
        return { due: due.map(bookingFromDocument), next: later?.expiresAt ?? null }
      },
      async findKeys (keys) {
        const docs = await bookings.find({ idempotencyKey: { $in: keys } }, { session }).toArray()
        return docs.map(bookingFromDocument)
      },
      async waitlist ({ sectionId }, ask) {
        const sid = parseId(sectionId)
        if (sid === null) return { waiting: [], complete: true, named: [], lastPosition: 0 }
        // limit(0) would read them all: no seats, no waiting entries read
        const limit = ask.seats === 0 ? 0 : ask.limit
        const waiting = limit === 0
          ? []
          : await waitEntries.find(waitingEntriesFilter(sid, ask.seats), { session }).sort(BY_POSITION).limit(limit).toArray()
        const namedFilter = namedEntriesFilter(sid, ask.ids, ask.userIds)
        const named = namedFilter === null ? [] : await waitEntries.find(namedFilter, { session }).sort(BY_POSITION).toArray()
        // only a join takes a position
        const [last] = ask.userIds.length === 0
          ? []
          : await waitEntries.find({ sectionId: sid }, { session, projection: { position: 1 } }).sort(LAST_POSITION).limit(1).toArray()
        return {
          waiting: waiting.map(entryFromDocument),
          complete: limit === 0 || waiting.length < limit,
          named: named.map(entryFromDocument),
          lastPosition: last?.position ?? 0
        }
      },
      async lockUserSeats (users) {
        const ids = users.flatMap(({ eventId, userIds }) => {
          const eid = parseId(eventId)
          return eid === null ? [] : userIds.map(u => userSeatsId(eid, u))
        })
        const docs = ids.length === 0 ? [] : await userSeats.find({ _id: { $in: ids } }, { session }).toArray()
        const seats = new Map(users.map(({ eventId }) => [eventId, new Map<string, number>()]))
        for (const d of docs) seats.get(d.eventId.toHexString())?.set(d.userId, d.seats)
        return seats
      },
      async apply (writes) {
        const remaining = new Map<string, number>()
        const records: NewChange[] = []
        for (const { eventId, sectionId, owner, effects, record } of writes) {
          const eid = parseId(eventId)
          const sid = parseId(sectionId)
          if (eid === null || sid === null) return null
          const { inserts, changes, at } = effects
          const section = sectionUpdate(eid, sid, effects)
          const updated = await events.findOneAndUpdate(section.filter, section.update,
            { session, projection: sectionProjection(sid), returnDocument: 'after' })
          const after = updated?.sections?.[0]
          if (after === undefined) return null
          // A racing duplicate idempotency key fails here (11000): the retry replays the stored booking.
          if (inserts.length > 0) await bookings.insertMany(inserts.map(bookingToDocument), { session })
          if (changes.length > 0) {
            // one change per booking (lib/domain/section-decision.ts): each must find its booking still in `from`
            const { modifiedCount } = await bookings.bulkWrite(
              changes.map(c => ({ updateOne: bookingChangeUpdate(sid, c, at) })), { session, ordered: true })
            if (modifiedCount !== changes.length) return null
          }
          const entries = effects.waitlist
          // moves first: a user whose entry leaves in this batch may join again in it (one active entry each)
          if (entries.changes.length > 0) {
            // as the bookings': each entry must still be in `from`
            const { modifiedCount } = await waitEntries.bulkWrite(
              entries.changes.map(c => ({ updateOne: entryChangeUpdate(sid, c, at) })), { session, ordered: true })
            if (modifiedCount !== entries.changes.length) return null
          }
          // a racing join that took the position, or the user's active entry, fails here (11000): the retry reads it
          if (entries.inserts.length > 0) await waitEntries.insertMany(entries.inserts.map(e => entryToDocument(e, at)), { session })
          if (effects.userSeats.length > 0) {
            const updates = effects.userSeats.map(u => userSeatsUpdate(eid, u.userId, u.delta, effects.maxPerUser))
            if (updates.some(u => u === null)) return null
            // a gain over the cap throws a duplicate key (retryable); a give-back without its seats matches nothing
            const { matchedCount, upsertedCount } = await userSeats.bulkWrite(
              updates.flatMap(u => u === null ? [] : [{ updateOne: u }]), { session, ordered: true })
            if (matchedCount + upsertedCount !== updates.length) return null
          }
          remaining.set(sectionId, after.remaining)
          if (record.bookings.length > 0) {
            const packed = packBookings(sectionId, record.bookings)
            records.push({ eventId, owner, sectionId, bookings: packed.ids, statuses: packed.statuses })
          }
          // a section's record is the section as this write left it
          if (record.section) records.push({ type: 'section.changed', eventId, owner, data: sectionFromDocument(after) })
          for (const entry of record.offers) records.push({ type: 'waitlist.offered', eventId, owner, data: entry })
        }
        await appendChanges(db, session, records, writes[0]?.effects.at)
        return remaining
      }
    }
  }

  return {
    kind: 'mongo',
    errors: { isRetryable: isRetryableMongoError, isUnavailable: isMongoUnavailable },
    ...mongoChangeStore(db, async () => serverTime(await db.command({ hello: 1 }))),

    async migrate () {
      const hello = await db.command({ hello: 1 })
      if (!supportsTransactions(hello)) {
        throw new Error('the MongoDB store needs a replica set (transactions); `docker compose up -d` starts one (rs0)')
      }
      // Named indexes with fixed options: creating them again is a no-op.
      await events.createIndexes(EVENT_INDEXES)
      await bookings.createIndexes(BOOKING_INDEXES)
      // before any transaction writes to it (servers before 4.4 cannot create one inside a transaction)
      for (const name of [USER_SEATS, CHANGES, COUNTERS, WEBHOOKS, WAITLIST]) {
        await db.createCollection(name).catch((err: unknown) => { if (!isNamespaceExists(err)) throw err })
      }
      await db.collection(CHANGES).createIndexes(CHANGE_INDEXES)
      await db.collection(WEBHOOKS).createIndexes(WEBHOOK_INDEXES)
      await waitEntries.createIndexes(WAITLIST_INDEXES)
      // sections from before holds: $inc on a missing held/sold would start it from zero, not from the truth
      await events.updateMany(SECTIONS_WITHOUT_COUNTERS, FILL_SECTION_COUNTERS)
    },

    async ping () {
      await db.command({ ping: 1 })
    },

    async insertEvent (event, signal) {
      // the event (one document, its sections in it) and its record: one transaction
      await inTransaction(async (session) => {
        await events.insertOne(eventToDocument(event), { session })
        await appendChanges(db, session, [eventCreatedRecord(event, Date.now())])
      }, signal)
    },

    async changeEvent (id, decide, signal) {
      const eid = parseId(id)
      if (eid === null) return null
      return await inTransaction(async (session) => {
        const doc = await events.findOne({ _id: eid }, { session })
        if (doc === null) return null
        const current = eventFromDocument(doc)
        // a DomainError thrown here aborts the transaction: nothing is written
        const change = decide(current)
        const update = eventChangeUpdate(change.fields, change.addSections)
        // nothing to write: the rules every batch read are still the event's
        if (update === null) return { event: current, recorded: null }
        // Writing the event document is what keeps batches off stale rules: a batch writes it first
        // (lockSection's lockedAt) in its own transaction, and of two transactions writing one document
        // the later writer meets a write conflict, whether the other is uncommitted or committed after
        // its snapshot. So a batch that read the rules before this write never commits (it reruns on
        // these), and this change, having read the event in its snapshot, reruns if anything wrote it since.
        const after = await events.findOneAndUpdate({ _id: eid }, update, { session, returnDocument: 'after' })
        if (after === null) return null
        const next = eventFromDocument(after)
        const record = eventChangeRecord(current, next, Date.now())
        if (record !== null) await appendChanges(db, session, [record])
        if (next.maxPerUser !== undefined && current.maxPerUser === undefined) {
          // the cap's guard counts anew: seats were not counted while the event had none
          await userSeats.deleteMany(eventUserSeatsFilter(eid), { session })
          const counts = await bookings.aggregate<{ _id: string, seats: number }>(userSeatsCountPipeline(eid), { session }).toArray()
          if (counts.length > 0) await userSeats.insertMany(userSeatsDocuments(eid, counts), { session })
        }
        return { event: next, recorded: record?.type ?? null }
      }, signal)
    },

    async getEvents (ids) {
      const oids = ids.flatMap(id => parseId(id) ?? [])
      if (oids.length === 0) return []
      const docs = await events.find({ _id: { $in: oids } }).toArray()
      return docs.map(eventFromDocument)
    },

    async listEvents (query) {
      const { page, limit, drafts, after } = query
      const filter = eventListFilter(drafts)
      // a cursor's id is an event's (lib/domain/list-cursor.ts): 24 hex digits
      const listed = after === undefined ? filter : afterPosition(filter, new Date(after.createdAt), parseId(after.id) ?? after.id)
      const [docs, total] = await Promise.all([
        events.find(listed).sort(NEWEST_FIRST).skip((page - 1) * limit).limit(limit).toArray(),
        // the whole list's total, not what is left after a cursor
        events.countDocuments(filter)
      ])
      return listPage(docs.map(eventFromDocument), total, query)
    },

    async findByIdempotencyKey (key) {
      const doc = await bookings.findOne({ idempotencyKey: key })
      return doc === null ? null : bookingFromDocument(doc)
    },

    async getBookings (ids) {
      const oids = ids.flatMap(id => parseBookingId(id) ?? [])
      if (oids.length === 0) return []
      const docs = await bookings.find({ _id: { $in: oids } }).toArray()
      return docs.map(bookingFromDocument)
    },

    async listBookings (query) {
      const { page, limit, after } = query
      const filter = bookingListFilter(query)
      if (filter === null) return listPage([], 0, query)
      // a cursor's id is a booking's: 48 hex digits, or 24 (an ObjectId) for one made before ids named their section
      const listed = after === undefined ? filter : afterPosition(filter, new Date(after.createdAt), parseBookingId(after.id) ?? after.id)
      const [docs, total] = await Promise.all([
        bookings.find(listed).sort(NEWEST_FIRST).skip((page - 1) * limit).limit(limit).toArray(),
        bookings.countDocuments(filter)
      ])
      return listPage(docs.map(bookingFromDocument), total, query)
    },

    async getWaitEntries (ids) {
      const oids = ids.flatMap(id => parseId(id) ?? [])
      if (oids.length === 0) return []
      const docs = await waitEntries.find({ _id: { $in: oids } }).toArray()
      return docs.map(entryFromDocument)
    },

    async listWaitEntries (query) {
      const filter = waitlistListFilter(query)
      // limit(0) would read them all
      if (filter === null || query.limit <= 0) return []
      const docs = await waitEntries.find(filter).sort(WAITLIST_ORDER).limit(query.limit).toArray()
      return docs.map(entryFromDocument)
    },

    async dueSections (limit) {
      // the server's clock, as the batches' $$NOW; then a plain range query, so the index serves it
      const now = serverTime(await db.command({ hello: 1 }))
      const docs = await events.aggregate(dueSectionsPipeline(now, limit)).toArray()
      return docs.map(dueSectionFromDocument)
    },

    async inSections (fn, signal) {
      return await inTransaction(async (session) => await fn(sectionsTx(session)), signal)
    }
  }
}

/** A Store on MongoDB (a replica set); the client belongs to the caller, the database is the URI's. */
export function createMongoStore (client: MongoClient, options: { observer?: StoreObserver } = {}): Store {
  return createStore(mongoDriver(client), options.observer)
}
