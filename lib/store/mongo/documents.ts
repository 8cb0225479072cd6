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
import type { StoredBooking } from '../../domain/allocation.ts'
import { BOOKING_ID_PATTERN, ID_PATTERN, type BookingListQuery, type BookingStatus, type EventStatus, type Section } from '../../api/schemas.ts'
import type { EventFields, StoredEvent } from '../../domain/sale-rules.ts'
import type { BookingChange, SectionEffects, SectionState } from '../../domain/section-ops.ts'
import type { SectionRef } from '../../domain/section-ops.ts'
import type { EventFilter, WaitlistQuery } from '../driver.ts'
import { isActive, type EntryChange, type StoredEntry, type WaitStatus } from '../../domain/waitlist.ts'

export interface SectionDocument {
  _id: ObjectId
  name: string
  price: number
  capacity: number
  remaining: number
  /** seats in held bookings; absent on sections from before holds (migrate fills it) */
  held?: number
  /** seats in confirmed bookings; absent on sections from before holds */
  sold?: number
  /** no later than the earliest expiresAt of the section's holds; absent when it has none (never null: $min would keep a null) */
  nextExpiry?: Date
  /** entries of its waiting list waiting; absent on sections from before the waiting list (none: 0, $inc starts it) */
  waiting?: number
}

/** Sections are embedded: one document write moves `remaining`, so no cross-document guard is needed. */
export interface EventDocument {
  _id: ObjectId
  name: string
  createdAt: Date
  sections: SectionDocument[]
  /** the organizer's sub; absent on events made before owners existed */
  ownerId?: string
  /** absent on events made before the lifecycle: they were all on sale (published) */
  status?: EventStatus
  description?: string
  venue?: string
  startsAt?: Date
  endsAt?: Date
  /** Dates: the batch compares them with the database's clock */
  salesStart?: Date
  salesEnd?: Date
  holdSeconds?: number
  maxPerUser?: number
  waitlistOfferSeconds?: number
  /** the database's clock when a section batch last locked the event (see LOCK_EVENT) */
  lockedAt?: Date
}

export interface BookingDocument {
  /** the API id as it is (48 hex digits, lib/domain/ids.ts); an ObjectId for a booking made before ids named their section */
  _id: string | ObjectId
  eventId: ObjectId
  sectionId: ObjectId
  userId: string
  qty: number
  unitPrice: number
  amount: number
  status: BookingStatus
  createdAt: Date
  cancelledAt?: Date
  expiresAt?: Date
  confirmedAt?: Date
  paymentRef?: string
  idempotencyKey?: string
  requestHash?: string
  /** the event's owner, copied when booked */
  eventOwner?: string
  /** the waiting-list entry this hold was offered to: the batch that ends the hold moves the entry too */
  waitlistId?: string
}

/** Seats one user holds plus has confirmed in an event with maxPerUser: the guard of the cap. */
export interface UserSeatsDocument {
  /** userSeatsId(eventId, userId) */
  _id: string
  eventId: ObjectId
  userId: string
  seats: number
}

/**
 * A place on a section's waiting list. Written only by its section's batch,
 * whose write of the event document keeps two batches of the section apart.
 */
export interface WaitEntryDocument {
  /** the API id's 24 hex digits */
  _id: ObjectId
  eventId: ObjectId
  sectionId: ObjectId
  userId: string
  qty: number
  position: number
  status: WaitStatus
  /** present (true) only while waiting or offered: the partial unique index keeps one such entry per user and section */
  active?: true
  bookingId?: string
  createdAt: Date
  updatedAt: Date
  eventOwner: string
}

export const EVENTS = 'events'
export const BOOKINGS = 'bookings'
export const USER_SEATS = 'userSeats'
export const WAITLIST = 'waitlist'

/** Snapshot reads and majority commits: a committed booking survives a failover. */
export const TRANSACTION_OPTIONS: TransactionOptions = {
  readConcern: { level: 'snapshot' },
  writeConcern: { w: 'majority' },
  readPreference: 'primary'
}

/** Newest first; _id breaks ties (a batch shares one createdAt) so pages never overlap. */
export const NEWEST_FIRST: Sort = { createdAt: -1, _id: -1 }

export const EVENT_INDEXES: IndexDescription[] = [
  { key: { createdAt: -1, _id: -1 }, name: 'events_newest' },
  // the sweeper's query (dueSections)
  { key: { 'sections.nextExpiry': 1 }, name: 'events_next_expiry' }
]

export const BOOKING_INDEXES: IndexDescription[] = [
  // The database, not the lock, guarantees one booking per key. Partial: bookings without a key are not indexed.
  { key: { idempotencyKey: 1 }, name: 'bookings_idempotency_key', unique: true, partialFilterExpression: { idempotencyKey: { $exists: true } } },
  { key: { eventId: 1, createdAt: -1, _id: -1 }, name: 'bookings_event_newest' },
  { key: { sectionId: 1, createdAt: -1, _id: -1 }, name: 'bookings_section_newest' },
  { key: { userId: 1, createdAt: -1, _id: -1 }, name: 'bookings_user_newest' },
  { key: { status: 1, createdAt: -1, _id: -1 }, name: 'bookings_status_newest' },
  { key: { eventOwner: 1, createdAt: -1, _id: -1 }, name: 'bookings_owner_newest' },
  { key: { createdAt: -1, _id: -1 }, name: 'bookings_newest' },
  // a section's holds by expiresAt (dueHolds); only held bookings are indexed
  { key: { sectionId: 1, expiresAt: 1 }, name: 'bookings_held_expiry', partialFilterExpression: { status: 'held' } }
]

/**
 * The one active entry per user is guarded on a field of its own, not on
 * `status: { $in: [...] }`: partial filters take $in only from MongoDB 6.0.
 */
export const WAITLIST_INDEXES: IndexDescription[] = [
  // positions are given by the section's batch: a racing join collides here (duplicate key, retryable)
  { key: { sectionId: 1, position: 1 }, name: 'waitlist_position', unique: true },
  { key: { sectionId: 1, userId: 1 }, name: 'waitlist_active', unique: true, partialFilterExpression: { active: true } },
  // the batch's read of the waiting entries, in position order
  { key: { sectionId: 1, status: 1, position: 1 }, name: 'waitlist_status_position' },
  // the event's list
  { key: { eventId: 1, sectionId: 1, position: 1 }, name: 'waitlist_event' }
]

const ID = new RegExp(ID_PATTERN)

/** The ObjectId of an API id, or null when it is not 24 hex digits (then nothing can match it). */
export function parseId (id: string): ObjectId | null {
  return ID.test(id) ? ObjectId.createFromHexString(id) : null
}

const BOOKING_ID = new RegExp(BOOKING_ID_PATTERN)

/** A booking's _id for an API id, or null when it is no booking id (then nothing can match it). */
export function parseBookingId (id: string): string | ObjectId | null {
  if (!BOOKING_ID.test(id)) return null
  return id.length === 24 ? ObjectId.createFromHexString(id) : id
}

/** The event's moments: Dates in the document, ISO strings (toISOString) in the API. */
const MOMENT_FIELDS = ['startsAt', 'endsAt', 'salesStart', 'salesEnd'] as const

/** A section of the API as stored. */
function sectionToDocument (s: Section): SectionDocument {
  return {
    _id: ObjectId.createFromHexString(s._id), name: s.name, price: s.price, capacity: s.capacity, remaining: s.remaining, held: s.held, sold: s.sold, waiting: s.waiting
  }
}

export function eventToDocument (event: StoredEvent): EventDocument {
  const doc: EventDocument = {
    _id: ObjectId.createFromHexString(event._id),
    name: event.name,
    createdAt: new Date(event.createdAt),
    sections: event.sections.map(sectionToDocument),
    ownerId: event.owner,
    status: event.status
  }
  // fields left out stay absent, as a change that clears one leaves them ($unset)
  if (event.description !== undefined) doc.description = event.description
  if (event.venue !== undefined) doc.venue = event.venue
  if (event.holdSeconds !== undefined) doc.holdSeconds = event.holdSeconds
  if (event.maxPerUser !== undefined) doc.maxPerUser = event.maxPerUser
  if (event.waitlistOfferSeconds !== undefined) doc.waitlistOfferSeconds = event.waitlistOfferSeconds
  for (const key of MOMENT_FIELDS) {
    const value = event[key]
    if (value !== undefined) doc[key] = new Date(value)
  }
  return doc
}

/** A section as the API answers it. */
export function sectionFromDocument (s: SectionDocument): Section {
  // sections from before holds: every seat not remaining was sold
  const held = s.held ?? 0
  return {
    _id: s._id.toHexString(),
    name: s.name,
    price: s.price,
    capacity: s.capacity,
    remaining: s.remaining,
    held,
    sold: s.sold ?? s.capacity - s.remaining - held,
    waiting: s.waiting ?? 0
  }
}

export function eventFromDocument (doc: EventDocument): StoredEvent {
  const event: StoredEvent = {
    _id: doc._id.toHexString(),
    name: doc.name,
    createdAt: doc.createdAt.toISOString(),
    status: doc.status ?? 'published',
    owner: doc.ownerId ?? '',
    sections: doc.sections.map(sectionFromDocument)
  }
  if (doc.description != null) event.description = doc.description
  if (doc.venue != null) event.venue = doc.venue
  if (doc.holdSeconds != null) event.holdSeconds = doc.holdSeconds
  if (doc.maxPerUser != null) event.maxPerUser = doc.maxPerUser
  if (doc.waitlistOfferSeconds != null) event.waitlistOfferSeconds = doc.waitlistOfferSeconds
  for (const key of MOMENT_FIELDS) {
    const value = doc[key]
    if (value != null) event[key] = value.toISOString()
  }
  return event
}

export function bookingToDocument (b: StoredBooking): BookingDocument {
  const doc: BookingDocument = {
    _id: parseBookingId(b._id) ?? b._id,
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
  if (b.expiresAt !== undefined) doc.expiresAt = new Date(b.expiresAt)
  if (b.confirmedAt !== undefined) doc.confirmedAt = new Date(b.confirmedAt)
  if (b.paymentRef !== undefined) doc.paymentRef = b.paymentRef
  if (b.idempotencyKey !== undefined) doc.idempotencyKey = b.idempotencyKey
  if (b.requestHash !== undefined) doc.requestHash = b.requestHash
  if (b.eventOwner !== undefined) doc.eventOwner = b.eventOwner
  if (b.waitlistId !== undefined) doc.waitlistId = b.waitlistId
  return doc
}

export function bookingFromDocument (doc: BookingDocument): StoredBooking {
  const b: StoredBooking = {
    _id: typeof doc._id === 'string' ? doc._id : doc._id.toHexString(),
    eventId: doc.eventId.toHexString(),
    sectionId: doc.sectionId.toHexString(),
    userId: doc.userId,
    qty: doc.qty,
    unitPrice: doc.unitPrice,
    amount: doc.amount,
    status: doc.status,
    createdAt: doc.createdAt.toISOString()
  }
  if (doc.expiresAt != null) b.expiresAt = doc.expiresAt.toISOString()
  if (doc.confirmedAt != null) b.confirmedAt = doc.confirmedAt.toISOString()
  if (doc.paymentRef != null) b.paymentRef = doc.paymentRef
  if (doc.cancelledAt != null) b.cancelledAt = doc.cancelledAt.toISOString()
  if (doc.idempotencyKey != null) b.idempotencyKey = doc.idempotencyKey
  if (doc.requestHash != null) b.requestHash = doc.requestHash
  if (doc.eventOwner != null) b.eventOwner = doc.eventOwner
  if (doc.waitlistId != null) b.waitlistId = doc.waitlistId
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

/**
 * A section batch's first step: stamps the event with the database's clock
 * (`$$NOW`, the batch's one moment) and reads back the section and the
 * event's rules and sale window. Being a write, it also makes a concurrent
 * batch or change of the event (eventChangeUpdate) fail with a write conflict
 * now (withTransaction retries it), not after its work.
 */
export function lockSection (eventId: ObjectId, sectionId: ObjectId): { filter: Filter<EventDocument>, update: Document[], projection: Document } {
  return {
    filter: { _id: eventId, 'sections._id': sectionId },
    update: [{ $set: { lockedAt: '$$NOW' } }],
    projection: {
      ...sectionProjection(sectionId), ownerId: 1, holdSeconds: 1, maxPerUser: 1, waitlistOfferSeconds: 1, status: 1, salesStart: 1, salesEnd: 1, lockedAt: 1
    }
  }
}

/** The SectionState of the event document lockSection returned; null when the section is not in it. */
export function sectionState (
  doc: Pick<EventDocument, 'ownerId' | 'holdSeconds' | 'maxPerUser' | 'waitlistOfferSeconds' | 'status' | 'salesStart' | 'salesEnd' | 'lockedAt'> &
  { sections?: SectionDocument[] }
): SectionState | null {
  const section = doc.sections?.[0]
  if (section === undefined) return null
  if (!(doc.lockedAt instanceof Date)) throw new Error('the section lock returned no lockedAt')
  return {
    remaining: section.remaining,
    capacity: section.capacity,
    price: section.price,
    sale: { status: doc.status ?? 'published', salesStart: doc.salesStart ?? null, salesEnd: doc.salesEnd ?? null },
    owner: doc.ownerId ?? '',
    holdSeconds: doc.holdSeconds ?? null,
    maxPerUser: doc.maxPerUser ?? null,
    nextExpiry: section.nextExpiry instanceof Date ? section.nextExpiry : null,
    waiting: section.waiting ?? 0,
    offerSeconds: doc.waitlistOfferSeconds ?? null,
    now: doc.lockedAt
  }
}

/** The section's held bookings due at `now`. */
export function dueHoldsFilter (sectionId: ObjectId, now: Date): Filter<BookingDocument> {
  return { sectionId, status: 'held', expiresAt: { $lte: now } }
}

/** The section's held bookings still running at `now`: the first by expiresAt is the next expiry. */
export function laterHoldsFilter (sectionId: ObjectId, now: Date): Filter<BookingDocument> {
  return { sectionId, status: 'held', expiresAt: { $gt: now } }
}

export const FIRST_TO_EXPIRE: Sort = { expiresAt: 1 }

/**
 * The batch's guarded write of the section: refused (no match) when
 * remaining would fall below zero (its delta includes a capacity change), or
 * its count of waiting entries; capacity moved, name and price set when an
 * edit gave them, the waiting count moved by the entries joined and served; nextExpiry
 * replaced, or moved earlier. Operators, not a pipeline: a name is stored as
 * the text it is, even one that starts with `$`.
 */
export function sectionUpdate (
  eventId: ObjectId, sectionId: ObjectId,
  effects: Pick<SectionEffects, 'remaining' | 'capacity' | 'name' | 'price' | 'held' | 'sold' | 'waiting' | 'nextExpiry'>
): GuardedUpdate<EventDocument> {
  const match: Document = { _id: sectionId }
  if (effects.remaining < 0) match.remaining = { $gte: -effects.remaining }
  // entries leave the count only if they were counted (a section from before the list has none waiting)
  if (effects.waiting < 0) match.waiting = { $gte: -effects.waiting }
  // `sections.$` is the element the $elemMatch matched
  const inc: Document = { 'sections.$.remaining': effects.remaining, 'sections.$.held': effects.held, 'sections.$.sold': effects.sold }
  if (effects.capacity !== 0) inc['sections.$.capacity'] = effects.capacity
  if (effects.waiting !== 0) inc['sections.$.waiting'] = effects.waiting
  const set: Document = {}
  if (effects.name !== undefined) set['sections.$.name'] = effects.name
  if (effects.price !== undefined) set['sections.$.price'] = effects.price
  const update: UpdateFilter<EventDocument> = { $inc: inc }
  const { replace, at } = effects.nextExpiry
  if (at === null) {
    if (replace) update.$unset = { 'sections.$.nextExpiry': '' }
  } else if (replace) {
    set['sections.$.nextExpiry'] = at
  } else {
    // a missing field takes the value
    update.$min = { 'sections.$.nextExpiry': at }
  }
  if (Object.keys(set).length > 0) update.$set = set
  return { filter: { _id: eventId, sections: { $elemMatch: match } }, update }
}

/**
 * A booking's change of status, applied only if it still has `from` (and is
 * in this section); a hold is confirmed only while its expiresAt is after the
 * batch's moment, decided in this statement.
 */
export function bookingChangeUpdate (sectionId: ObjectId, change: BookingChange, at: Date): GuardedUpdate<BookingDocument> {
  const filter: Filter<BookingDocument> = { _id: parseBookingId(change.id) ?? change.id, sectionId, status: change.from }
  const set: Partial<BookingDocument> = { status: change.to }
  if (change.confirms) {
    filter.expiresAt = { $gt: at }
    set.confirmedAt = at
    if (change.paymentRef !== undefined) set.paymentRef = change.paymentRef
  }
  if (change.to === 'cancelled') set.cancelledAt = at
  return { filter, update: { $set: set } }
}

/** A user's seats in an event are one document: the event's id and the userId (printable ASCII, after 24 hex digits). */
export function userSeatsId (eventId: ObjectId, userId: string): string {
  return `${eventId.toHexString()}:${userId}`
}

/**
 * A user's seats moved by `delta`. A gain is an upsert guarded by the cap:
 * when the stored seats would pass it the filter misses, the upsert collides
 * with the stored _id and fails with a duplicate key (retryable). A give-back
 * needs the document, and never takes it below zero. Null: the gain alone passes the cap.
 */
export function userSeatsUpdate (
  eventId: ObjectId, userId: string, delta: number, maxPerUser: number | null
): GuardedUpdate<UserSeatsDocument> & { upsert: boolean } | null {
  const _id = userSeatsId(eventId, userId)
  if (delta < 0) return { filter: { _id, seats: { $gte: -delta } }, update: { $inc: { seats: delta } }, upsert: false }
  if (maxPerUser !== null && delta > maxPerUser) return null
  return {
    filter: maxPerUser === null ? { _id } : { _id, seats: { $lte: maxPerUser - delta } },
    update: { $inc: { seats: delta }, $setOnInsert: { eventId, userId } },
    upsert: true
  }
}

/**
 * A user's seats documents of one event: a range of _id (the event's digits,
 * then ':', then a userId of printable ASCII, all below ';'), so the _id index
 * serves it.
 */
export function eventUserSeatsFilter (eventId: ObjectId): Filter<UserSeatsDocument> {
  const hex = eventId.toHexString()
  return { _id: { $gte: `${hex}:`, $lt: `${hex};` } }
}

/** Each user's seats held and confirmed in the event, counted from its bookings: `{ _id: userId, seats }`. */
export function userSeatsCountPipeline (eventId: ObjectId): Document[] {
  return [
    { $match: { eventId, status: { $in: ['held', 'confirmed'] satisfies BookingStatus[] } } },
    { $group: { _id: '$userId', seats: { $sum: '$qty' } } }
  ]
}

/** The users' seats documents of the counts of userSeatsCountPipeline. */
export function userSeatsDocuments (eventId: ObjectId, counts: ReadonlyArray<{ _id: string, seats: number }>): UserSeatsDocument[] {
  return counts.map(c => ({ _id: userSeatsId(eventId, c._id), eventId, userId: c._id, seats: c.seats }))
}

/** The events a viewer may list: drafts only when all are shown, or their owner's. */
export function eventListFilter (drafts: EventFilter['drafts']): Filter<EventDocument> {
  // $ne matches an absent status too: events from before the lifecycle are published
  const published: Filter<EventDocument> = { status: { $ne: 'draft' } }
  if (drafts === 'all') return {}
  if (drafts === 'none') return published
  return { $or: [published, { ownerId: drafts.owner }] }
}

/**
 * A change of an event as one update: each field it sets stored ($set),
 * each it clears (null) removed ($unset), its new sections appended with
 * every seat on sale. Operators, not a pipeline: text is stored as it is,
 * even text that starts with `$`. Null when the change writes nothing.
 */
export function eventChangeUpdate (fields: EventFields, addSections: readonly Section[]): UpdateFilter<EventDocument> | null {
  const set: Document = {}
  const unset: Document = {}
  const plain = {
    name: fields.name,
    status: fields.status,
    description: fields.description,
    venue: fields.venue,
    holdSeconds: fields.holdSeconds,
    maxPerUser: fields.maxPerUser,
    waitlistOfferSeconds: fields.waitlistOfferSeconds
  }
  for (const [key, value] of Object.entries(plain)) {
    if (value === null) unset[key] = ''
    else if (value !== undefined) set[key] = value
  }
  for (const key of MOMENT_FIELDS) {
    const value = fields[key]
    if (value === null) unset[key] = ''
    else if (value !== undefined) set[key] = new Date(value)
  }
  const update: UpdateFilter<EventDocument> = {}
  // empty operators are refused by servers before 5.0
  if (Object.keys(set).length > 0) update.$set = set
  if (Object.keys(unset).length > 0) update.$unset = unset
  if (addSections.length > 0) {
    update.$push = { sections: { $each: addSections.map(s => sectionToDocument({ ...s, remaining: s.capacity, held: 0, sold: 0, waiting: 0 })) } }
  }
  return Object.keys(update).length === 0 ? null : update
}

/**
 * Sections with a hold due at `now` (the server's clock), most overdue first.
 * The first $match uses the index; the second keeps only the due sections of those events.
 */
export function dueSectionsPipeline (now: Date, limit: number): Document[] {
  return [
    { $match: { 'sections.nextExpiry': { $lte: now } } },
    { $project: { 'sections._id': 1, 'sections.nextExpiry': 1 } },
    { $unwind: '$sections' },
    { $match: { 'sections.nextExpiry': { $lte: now } } },
    { $sort: { 'sections.nextExpiry': 1, _id: 1 } },
    { $limit: limit },
    { $project: { _id: 0, eventId: '$_id', sectionId: '$sections._id' } }
  ]
}

export function dueSectionFromDocument (doc: Document): SectionRef {
  return { eventId: (doc.eventId as ObjectId).toHexString(), sectionId: (doc.sectionId as ObjectId).toHexString() }
}

/** The server's clock, from a `hello` answer. */
export function serverTime (hello: Document): Date {
  if (!(hello.localTime instanceof Date)) throw new Error('the MongoDB server did not tell its time (hello.localTime)')
  return hello.localTime
}

/** Events with a section from before holds: held and sold absent. */
export const SECTIONS_WITHOUT_COUNTERS: Filter<EventDocument> = { sections: { $elemMatch: { sold: { $exists: false } } } }

/** Fills held (0) and sold (capacity - remaining - held) where absent, so later $inc start from the truth. */
export const FILL_SECTION_COUNTERS: Document[] = [{
  $set: {
    sections: {
      $map: {
        input: '$sections',
        as: 's',
        in: {
          $mergeObjects: ['$$s', {
            held: { $ifNull: ['$$s.held', 0] },
            sold: { $ifNull: ['$$s.sold', { $subtract: [{ $subtract: ['$$s.capacity', '$$s.remaining'] }, { $ifNull: ['$$s.held', 0] }] }] }
          }]
        }
      }
    }
  }
}]

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

/**
 * `filter`, narrowed to the documents after a cursor's position in
 * NEWEST_FIRST order: older, or as old with a lower _id. The bound on
 * createdAt alone gives the (..., createdAt, _id) indexes their range; the $or
 * decides the moment's ties. `id` as stored: a booking's is a string, or an
 * ObjectId for one made before booking ids named their section.
 */
export function afterPosition<T extends EventDocument | BookingDocument> (filter: Filter<T>, at: Date, id: ObjectId | string): Filter<T> {
  const ties: Array<Filter<T>> = [{ createdAt: at, _id: { $lt: id } } as Filter<T>]
  // _id: -1 puts the ObjectIds before the strings, and $lt compares within one type:
  // after an ObjectId, the moment's string ids all follow it
  if (id instanceof ObjectId) ties.push({ createdAt: at, _id: { $type: 'string' } } as Filter<T>)
  const after = { createdAt: { $lte: at }, $or: [{ createdAt: { $lt: at } } as Filter<T>, ...ties] } as Filter<T>
  return { $and: [filter, after] } as Filter<T>
}

/** A new entry as stored, joined at the batch's moment `at`: waiting, so active. */
export function entryToDocument (entry: StoredEntry, at: Date): WaitEntryDocument {
  const doc: WaitEntryDocument = {
    _id: ObjectId.createFromHexString(entry._id),
    eventId: ObjectId.createFromHexString(entry.eventId),
    sectionId: ObjectId.createFromHexString(entry.sectionId),
    userId: entry.userId,
    qty: entry.qty,
    position: entry.position,
    status: entry.status,
    createdAt: at,
    updatedAt: at,
    eventOwner: entry.eventOwner
  }
  if (isActive(entry.status)) doc.active = true
  if (entry.bookingId !== undefined) doc.bookingId = entry.bookingId
  return doc
}

export function entryFromDocument (doc: WaitEntryDocument): StoredEntry {
  const entry: StoredEntry = {
    _id: doc._id.toHexString(),
    eventId: doc.eventId.toHexString(),
    sectionId: doc.sectionId.toHexString(),
    userId: doc.userId,
    qty: doc.qty,
    position: doc.position,
    status: doc.status,
    createdAt: doc.createdAt.toISOString(),
    eventOwner: doc.eventOwner
  }
  if (doc.bookingId != null) entry.bookingId = doc.bookingId
  return entry
}

/** A waiting list in its order. */
export const BY_POSITION: Sort = { position: 1 }
/** The entry with the highest position first: the last one the list gave. */
export const LAST_POSITION: Sort = { position: -1 }
/** An event's entries in the list's order (sectionIds as ObjectIds order as their hex text does). */
export const WAITLIST_ORDER: Sort = { sectionId: 1, position: 1 }

/** The section's waiting entries that fit in `seats`. */
export function waitingEntriesFilter (sectionId: ObjectId, seats: number): Filter<WaitEntryDocument> {
  return { sectionId, status: 'waiting', qty: { $lte: seats } }
}

/**
 * The section's entries with these ids (malformed ones name nothing), and
 * those of these users still waiting or offered; null when none is named.
 */
export function namedEntriesFilter (sectionId: ObjectId, ids: readonly string[], userIds: readonly string[]): Filter<WaitEntryDocument> | null {
  const oids = ids.flatMap(id => parseId(id) ?? [])
  const named: Array<Filter<WaitEntryDocument>> = []
  if (oids.length > 0) named.push({ _id: { $in: oids } })
  // `active` rather than the statuses: the partial unique index serves it
  if (userIds.length > 0) named.push({ userId: { $in: [...userIds] }, active: true })
  if (named.length === 0) return null
  return { sectionId, $or: named }
}

/**
 * An entry's move, applied only if it still has `from` (and is in this
 * section); `active` follows the status, so a user who left may join again.
 */
export function entryChangeUpdate (sectionId: ObjectId, change: EntryChange, at: Date): GuardedUpdate<WaitEntryDocument> {
  // the id is one the batch read or made: malformed would be a bug, and throws
  const filter: Filter<WaitEntryDocument> = { _id: ObjectId.createFromHexString(change.id), sectionId, status: change.from }
  const set: Partial<WaitEntryDocument> = { status: change.to, updatedAt: at }
  if (change.bookingId !== undefined) set.bookingId = change.bookingId
  const update: UpdateFilter<WaitEntryDocument> = { $set: set }
  if (isActive(change.to)) set.active = true
  else update.$unset = { active: '' }
  return { filter, update }
}

/**
 * An event's entries, of one section and one user when given, after a place
 * in WAITLIST_ORDER: a later section, or the same one at a later position.
 * Null when an id is malformed (nothing can match it).
 */
export function waitlistListFilter (query: Pick<WaitlistQuery, 'eventId' | 'sectionId' | 'userId' | 'after'>): Filter<WaitEntryDocument> | null {
  const eventId = parseId(query.eventId)
  if (eventId === null) return null
  const filter: Filter<WaitEntryDocument> = { eventId }
  if (query.sectionId !== undefined) {
    const sectionId = parseId(query.sectionId)
    if (sectionId === null) return null
    filter.sectionId = sectionId
  }
  if (query.userId !== undefined) filter.userId = query.userId
  if (query.after !== undefined) {
    const after = parseId(query.after.sectionId)
    if (after === null) return null
    filter.$or = [{ sectionId: { $gt: after } }, { sectionId: after, position: { $gt: query.after.position } }]
  }
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

const NAMESPACE_EXISTS = 48

/** createCollection of a collection another instance (or an earlier run) made. */
export function isNamespaceExists (err: unknown): boolean {
  return err instanceof MongoError && err.code === NAMESPACE_EXISTS
}

/**
 * Errors after which the whole transaction may run again. Write conflicts and
 * other TransientTransactionErrors are already retried inside withTransaction;
 * a duplicate key is not: a racing request stored its idempotency key first,
 * or a user's seats passed maxPerUser (userSeatsUpdate).
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
