/**
 * The MongoDB store's pure parts: document shapes, document <-> API mapping,
 * index definitions, the filter/update documents of the guarded writes and
 * the classification of driver errors. No I/O here, so all of it is unit-tested.
 */
import {
  MongoClientClosedError, MongoError, MongoNetworkError, MongoNotConnectedError, MongoOperationTimeoutError,
  MongoServerClosedError, MongoServerSelectionError, MongoTopologyClosedError, ObjectId,
  type Document, type Filter, type IndexDescription, type Sort, type TransactionOptions, type UpdateFilter
} from 'mongodb'
import type { StoredBooking } from '../allocation.ts'
import { ID_PATTERN, type BookingListQuery, type Event } from '../schemas.ts'

export interface SectionDocument {
  _id: ObjectId
  name: string
  price: number
  capacity: number
  remaining: number
}

/** Sections are embedded: one document write moves `remaining`, so no cross-document guard is needed. */
export interface EventDocument {
  _id: ObjectId
  name: string
  createdAt: Date
  sections: SectionDocument[]
  /** the organizer's sub; absent on events made before owners existed */
  ownerId?: string
}

export interface BookingDocument {
  _id: ObjectId
  eventId: ObjectId
  sectionId: ObjectId
  userId: string
  qty: number
  unitPrice: number
  amount: number
  status: 'confirmed' | 'cancelled'
  createdAt: Date
  cancelledAt?: Date
  idempotencyKey?: string
  requestHash?: string
  /** the event's owner, copied when booked */
  eventOwner?: string
}

export const EVENTS = 'events'
export const BOOKINGS = 'bookings'

/** Snapshot reads and majority commits: a committed booking survives a failover. */
export const TRANSACTION_OPTIONS: TransactionOptions = {
  readConcern: { level: 'snapshot' },
  writeConcern: { w: 'majority' },
  readPreference: 'primary'
}

/** Newest first; _id breaks ties (a batch shares one createdAt) so pages never overlap. */
export const NEWEST_FIRST: Sort = { createdAt: -1, _id: -1 }

export const EVENT_INDEXES: IndexDescription[] = [
  { key: { createdAt: -1, _id: -1 }, name: 'events_newest' }
]

export const BOOKING_INDEXES: IndexDescription[] = [
  // The database, not the lock, guarantees one booking per key. Partial: bookings without a key are not indexed.
  { key: { idempotencyKey: 1 }, name: 'bookings_idempotency_key', unique: true, partialFilterExpression: { idempotencyKey: { $exists: true } } },
  { key: { eventId: 1, createdAt: -1, _id: -1 }, name: 'bookings_event_newest' },
  { key: { sectionId: 1, createdAt: -1, _id: -1 }, name: 'bookings_section_newest' },
  { key: { userId: 1, createdAt: -1, _id: -1 }, name: 'bookings_user_newest' },
  { key: { status: 1, createdAt: -1, _id: -1 }, name: 'bookings_status_newest' },
  { key: { eventOwner: 1, createdAt: -1, _id: -1 }, name: 'bookings_owner_newest' },
  { key: { createdAt: -1, _id: -1 }, name: 'bookings_newest' }
]

const ID = new RegExp(ID_PATTERN)

/** The ObjectId of an API id, or null when it is not 24 hex digits (then nothing can match it). */
export function parseId (id: string): ObjectId | null {
  return ID.test(id) ? ObjectId.createFromHexString(id) : null
}

export function eventToDocument (event: Event, ownerId = ''): EventDocument {
  return {
    _id: ObjectId.createFromHexString(event._id),
    name: event.name,
    createdAt: new Date(event.createdAt),
    sections: event.sections.map(s => ({ ...s, _id: ObjectId.createFromHexString(s._id) })),
    ownerId
  }
}

export function eventFromDocument (doc: EventDocument): Event {
  return {
    _id: doc._id.toHexString(),
    name: doc.name,
    createdAt: doc.createdAt.toISOString(),
    sections: doc.sections.map(s => ({
      _id: s._id.toHexString(), name: s.name, price: s.price, capacity: s.capacity, remaining: s.remaining
    }))
  }
}

export function bookingToDocument (b: StoredBooking): BookingDocument {
  const doc: BookingDocument = {
    _id: ObjectId.createFromHexString(b._id),
    eventId: ObjectId.createFromHexString(b.eventId),
    sectionId: ObjectId.createFromHexString(b.sectionId),
    userId: b.userId,
    qty: b.qty,
    unitPrice: b.unitPrice,
    amount: b.amount,
    status: b.status,
    createdAt: new Date(b.createdAt)
  }
  // Absent fields stay absent: an explicit null key would enter the unique index and collide.
  if (b.cancelledAt !== undefined) doc.cancelledAt = new Date(b.cancelledAt)
  if (b.idempotencyKey !== undefined) doc.idempotencyKey = b.idempotencyKey
  if (b.requestHash !== undefined) doc.requestHash = b.requestHash
  if (b.eventOwner !== undefined) doc.eventOwner = b.eventOwner
  return doc
}

export function bookingFromDocument (doc: BookingDocument): StoredBooking {
  const b: StoredBooking = {
    _id: doc._id.toHexString(),
    eventId: doc.eventId.toHexString(),
    sectionId: doc.sectionId.toHexString(),
    userId: doc.userId,
    qty: doc.qty,
    unitPrice: doc.unitPrice,
    amount: doc.amount,
    status: doc.status,
    createdAt: doc.createdAt.toISOString()
  }
  if (doc.cancelledAt != null) b.cancelledAt = doc.cancelledAt.toISOString()
  if (doc.idempotencyKey != null) b.idempotencyKey = doc.idempotencyKey
  if (doc.requestHash != null) b.requestHash = doc.requestHash
  if (doc.eventOwner != null) b.eventOwner = doc.eventOwner
  return b
}

/** Projects an event down to the one section asked for (`sections` is absent when none matches). */
export function sectionProjection (sectionId: ObjectId): Document {
  return { sections: { $elemMatch: { _id: sectionId } } }
}

export interface GuardedUpdate<T extends Document> {
  filter: Filter<T>
  update: UpdateFilter<T>
}

/** Takes `total` seats only if that many remain: the guard against overselling, whatever the lock did. */
export function decrementSection (eventId: ObjectId, sectionId: ObjectId, total: number): GuardedUpdate<EventDocument> {
  return {
    filter: { _id: eventId, sections: { $elemMatch: { _id: sectionId, remaining: { $gte: total } } } },
    update: { $inc: { 'sections.$.remaining': -total } }
  }
}

export function incrementSection (eventId: ObjectId, sectionId: ObjectId, qty: number): GuardedUpdate<EventDocument> {
  return {
    filter: { _id: eventId, sections: { $elemMatch: { _id: sectionId } } },
    update: { $inc: { 'sections.$.remaining': qty } }
  }
}

/** Cancels only a confirmed booking, so seats cannot be given back twice. */
export function cancelBookingUpdate (bookingId: ObjectId, now: Date): GuardedUpdate<BookingDocument> {
  return {
    filter: { _id: bookingId, status: 'confirmed' },
    update: { $set: { status: 'cancelled', cancelledAt: now } }
  }
}

/** The list filter, or null when an id filter is malformed (nothing can match it). */
export function bookingListFilter (query: Pick<BookingListQuery, 'eventId' | 'sectionId' | 'userId' | 'status'> & { eventOwner?: string }): Filter<BookingDocument> | null {
  const filter: Filter<BookingDocument> = {}
  for (const field of ['eventId', 'sectionId'] as const) {
    const value = query[field]
    if (value === undefined) continue
    const id = parseId(value)
    if (id === null) return null
    filter[field] = id
  }
  if (query.userId !== undefined) filter.userId = query.userId
  if (query.status !== undefined) filter.status = query.status
  if (query.eventOwner !== undefined) filter.eventOwner = query.eventOwner
  return filter
}

/** Transactions need a replica set member or mongos; a standalone server would fail on the first booking. */
export function supportsTransactions (hello: Document): boolean {
  return typeof hello.setName === 'string' || hello.msg === 'isdbgrid'
}

const DUPLICATE_KEY = 11000

export function isDuplicateKeyError (err: unknown): boolean {
  return err instanceof MongoError && err.code === DUPLICATE_KEY
}

/**
 * Errors after which the whole transaction may run again. Write conflicts and
 * other TransientTransactionErrors are already retried inside withTransaction;
 * a duplicate idempotency key (a racing request stored it first) is not.
 */
export function isRetryableMongoError (err: unknown): boolean {
  return isDuplicateKeyError(err)
}

/** Server codes meaning "no usable primary right now": shutdown, step-down, election, lost host. */
const UNAVAILABLE_CODES = new Set([
  6, // HostUnreachable
  7, // HostNotFound
  89, // NetworkTimeout
  91, // ShutdownInProgress
  189, // PrimarySteppedDown
  9001, // SocketException
  10107, // NotWritablePrimary
  11600, // InterruptedAtShutdown
  11602, // InterruptedDueToReplStateChange
  13435, // NotPrimaryNoSecondaryOk
  13436 // NotPrimaryOrSecondary
])

const UNAVAILABLE_CLASSES = [
  MongoServerSelectionError, MongoNetworkError, MongoTopologyClosedError, MongoNotConnectedError,
  MongoServerClosedError, MongoClientClosedError, MongoOperationTimeoutError
]

/** True when the database is out of reach (answered as 503, never as 500). */
export function isMongoUnavailable (err: unknown): boolean {
  if (!(err instanceof MongoError)) return false
  if (UNAVAILABLE_CLASSES.some(cls => err instanceof cls)) return true
  return typeof err.code === 'number' && UNAVAILABLE_CODES.has(err.code)
}
