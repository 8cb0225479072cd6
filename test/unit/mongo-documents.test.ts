import {
  MongoBulkWriteError, MongoClient, MongoError, MongoNetworkError, MongoNetworkTimeoutError, MongoServerError,
  MongoServerSelectionError, MongoTopologyClosedError, ObjectId, type BulkWriteResult
} from 'mongodb'
import t from 'tap'
import type { StoredBooking } from '../../lib/domain/allocation.ts'
import { RetryableConflict } from '../../lib/domain/errors.ts'
import {
  BOOKING_INDEXES, EVENT_INDEXES, FILL_SECTION_COUNTERS, FIRST_TO_EXPIRE, NEWEST_FIRST, SECTIONS_WITHOUT_COUNTERS, TRANSACTION_OPTIONS,
  bookingChangeUpdate, bookingFromDocument, bookingListFilter, bookingToDocument, dueHoldsFilter, dueSectionFromDocument,
  dueSectionsPipeline, eventChangeUpdate, eventFromDocument, eventListFilter, eventToDocument, eventUserSeatsFilter, isDuplicateKeyError,
  isMongoUnavailable, isNamespaceExists, isRetryableMongoError, laterHoldsFilter, lockSection, parseBookingId, parseId, sectionProjection,
  sectionState, sectionUpdate, serverTime, supportsTransactions, userSeatsCountPipeline, userSeatsDocuments, userSeatsId, userSeatsUpdate,
  BY_POSITION, LAST_POSITION, WAITLIST_INDEXES, WAITLIST_ORDER, entryChangeUpdate, entryFromDocument, entryToDocument, namedEntriesFilter,
  waitingEntriesFilter, waitlistListFilter, type EventDocument
} from '../../lib/store/mongo/documents.ts'
import type { StoredEvent } from '../../lib/domain/sale-rules.ts'
import type { StoredEntry } from '../../lib/domain/waitlist.ts'

const hex = (n: number) => n.toString(16).padStart(24, '0')

const event: StoredEvent = {
  _id: hex(1),
  name: 'Concert',
  createdAt: '2025-01-02T03:04:05.678Z',
  status: 'published',
  owner: '',
  sections: [
    { _id: hex(2), name: 'Floor', price: 99.99, capacity: 10, remaining: 7, held: 1, sold: 2, waiting: 0 },
    { _id: hex(3), name: 'Balcony', price: 10, capacity: 5, remaining: 5, held: 0, sold: 0, waiting: 3 }
  ]
}

const booking: StoredBooking = {
  _id: hex(4),
  eventId: hex(1),
  sectionId: hex(2),
  userId: 'u1',
  qty: 3,
  unitPrice: 99.99,
  amount: 299.97,
  status: 'confirmed',
  createdAt: '2025-01-02T03:04:06.000Z'
}

t.test('parseId accepts 24 lowercase hex digits only', async t => {
  t.same(parseId(hex(10)), new ObjectId(hex(10)))
  t.same(parseId('abcdef0123456789abcdef01'), new ObjectId('abcdef0123456789abcdef01'))
  t.equal(parseId('ABCDEF0123456789ABCDEF01'), null, 'uppercase is malformed: not found, as on every store')
  t.equal(parseId('abcdef0123456789abcdeF01'), null, 'one uppercase digit is enough')
  t.equal(parseId('zz'.repeat(12)), null)
  t.equal(parseId('abcdefghijkl'), null, 'a 12-character string is not taken as 12 raw bytes')
  t.equal(parseId(''), null)
})

t.test('parseBookingId: 48 hex digits stay the string, 24 (a booking from before) are an ObjectId', async t => {
  t.equal(parseBookingId(hex(4) + hex(2)), hex(4) + hex(2))
  t.same(parseBookingId(hex(4)), new ObjectId(hex(4)))
  t.equal(parseBookingId(hex(4) + 'z'.repeat(24)), null)
  t.equal(parseBookingId(hex(4) + hex(2).slice(1)), null, '47 digits')
  t.equal(parseBookingId('A'.repeat(48)), null, 'uppercase')
  t.equal(parseBookingId('A'.repeat(24)), null, 'uppercase, from before')
})

t.test('a booking whose id names its section keeps that id as its _id', async t => {
  const named: StoredBooking = { ...booking, _id: hex(9) + booking.sectionId }
  const doc = bookingToDocument(named)
  t.equal(doc._id, named._id)
  t.strictSame(bookingFromDocument(doc), named)
  t.same(bookingChangeUpdate(new ObjectId(booking.sectionId), { id: named._id, from: 'held', to: 'cancelled', confirms: false }, new Date()).filter._id, named._id)
})

t.test('events map to documents and back, sections in order', async t => {
  const doc = eventToDocument(event)
  t.ok(doc._id instanceof ObjectId)
  t.equal(doc._id.toHexString(), event._id)
  t.ok(doc.createdAt instanceof Date)
  t.same(doc.sections.map(s => [s._id.toHexString(), s.name, s.remaining]), [[hex(2), 'Floor', 7], [hex(3), 'Balcony', 5]])
  t.ok(doc.sections.every(s => s._id instanceof ObjectId), 'section ids are ObjectIds')
  t.strictSame(eventFromDocument(doc), event, 'round trip is exact')
  for (const key of ['holdSeconds', 'maxPerUser', 'waitlistOfferSeconds', 'description', 'venue', 'startsAt', 'endsAt', 'salesStart', 'salesEnd']) {
    t.notOk(key in doc, `${key} left out stays absent`)
  }
  t.same(doc.sections.map(s => [s.held, s.sold, s.waiting]), [[1, 2, 0], [0, 0, 3]])
  t.match(doc, { ownerId: '', status: 'published' })

  const ruled: StoredEvent = { ...event, holdSeconds: 120, maxPerUser: 4, waitlistOfferSeconds: 900, owner: 'org-1' }
  const ruledDoc = eventToDocument(ruled)
  t.match(ruledDoc, { holdSeconds: 120, maxPerUser: 4, waitlistOfferSeconds: 900, ownerId: 'org-1' })
  t.strictSame(eventFromDocument(ruledDoc), ruled, 'the rules round trip')
})

t.test('events: details, sale window and status map to documents and back', async t => {
  const full: StoredEvent = {
    ...event,
    owner: 'org-1',
    status: 'draft',
    description: '$not an operator',
    venue: 'Arena, Hall 1',
    startsAt: '2026-06-01T19:30:00.000Z',
    endsAt: '2026-06-01T23:00:00.000Z',
    salesStart: '2026-03-01T10:00:00.000Z',
    salesEnd: '2026-06-01T18:00:00.000Z'
  }
  const doc = eventToDocument(full)
  t.match(doc, { status: 'draft', description: '$not an operator', venue: 'Arena, Hall 1', ownerId: 'org-1' })
  for (const key of ['startsAt', 'endsAt', 'salesStart', 'salesEnd'] as const) {
    t.ok(doc[key] instanceof Date, `${key} is a Date: compared with the database's clock`)
    t.equal(doc[key]?.toISOString(), full[key])
  }
  t.strictSame(eventFromDocument(doc), full, 'round trip is exact')
  for (const status of ['published', 'closed', 'cancelled'] as const) {
    t.equal(eventFromDocument(eventToDocument({ ...full, status })).status, status)
  }
})

t.test('events: sections from before holds count every missing seat as sold, from before the waiting list none waiting; stored-only fields stay inside', async t => {
  const doc: EventDocument = {
    _id: new ObjectId(hex(1)),
    name: 'Old',
    createdAt: new Date(event.createdAt),
    sections: [{ _id: new ObjectId(hex(2)), name: 'Floor', price: 5, capacity: 10, remaining: 4, nextExpiry: new Date() }],
    ownerId: 'o',
    lockedAt: new Date()
  }
  t.strictSame(eventFromDocument(doc), {
    _id: hex(1),
    name: 'Old',
    createdAt: event.createdAt,
    status: 'published',
    owner: 'o',
    sections: [{ _id: hex(2), name: 'Floor', price: 5, capacity: 10, remaining: 4, held: 0, sold: 6, waiting: 0 }]
  }, 'no status: published (events from before the lifecycle were on sale)')
  t.equal(eventFromDocument({ ...doc, ownerId: undefined }).owner, '', 'no owner: \'\'')
  const { ownerId: _o, ...ownerless } = doc
  t.equal(eventFromDocument(ownerless).owner, '', 'no owner field: \'\'')
  t.same(SECTIONS_WITHOUT_COUNTERS, { sections: { $elemMatch: { sold: { $exists: false } } } })
  t.match(FILL_SECTION_COUNTERS, [{ $set: { sections: { $map: { input: '$sections' } } } }], 'migrate fills them in one pipeline update')
})

t.test('bookings map to documents and back', async t => {
  const doc = bookingToDocument(booking)
  t.ok(doc.eventId instanceof ObjectId && doc.sectionId instanceof ObjectId && doc._id instanceof ObjectId)
  t.notOk('idempotencyKey' in doc, 'no key: the field is absent, not null (the unique index must not see it)')
  t.notOk('requestHash' in doc)
  t.notOk('cancelledAt' in doc)
  t.strictSame(bookingFromDocument(doc), booking)

  const keyed: StoredBooking = { ...booking, status: 'cancelled', cancelledAt: '2025-01-03T00:00:00.000Z', idempotencyKey: 'k1', requestHash: 'h1' }
  const keyedDoc = bookingToDocument(keyed)
  t.equal(keyedDoc.idempotencyKey, 'k1')
  t.same(keyedDoc.cancelledAt, new Date('2025-01-03T00:00:00.000Z'))
  t.strictSame(bookingFromDocument(keyedDoc), keyed)

  const held: StoredBooking = { ...booking, status: 'held', expiresAt: '2025-01-02T03:14:06.000Z', eventOwner: 'o' }
  const heldDoc = bookingToDocument(held)
  t.same(heldDoc.expiresAt, new Date(held.expiresAt as string), 'expiresAt is a Date: compared with the database\'s clock')
  t.notOk('confirmedAt' in heldDoc || 'paymentRef' in heldDoc)
  t.strictSame(bookingFromDocument(heldDoc), held)

  const confirmed: StoredBooking = { ...held, status: 'confirmed', confirmedAt: '2025-01-02T03:05:00.000Z', paymentRef: 'pay-1' }
  const confirmedDoc = bookingToDocument(confirmed)
  t.same(confirmedDoc.confirmedAt, new Date('2025-01-02T03:05:00.000Z'))
  t.strictSame(bookingFromDocument(confirmedDoc), confirmed)
  t.strictSame(bookingFromDocument(bookingToDocument({ ...held, status: 'expired' })), { ...held, status: 'expired' })

  const offered: StoredBooking = { ...held, waitlistId: hex(8) }
  const offeredDoc = bookingToDocument(offered)
  t.equal(offeredDoc.waitlistId, hex(8), 'an offer\'s hold names its entry')
  t.notOk('waitlistId' in heldDoc, 'absent on any other booking')
  t.strictSame(bookingFromDocument(offeredDoc), offered)
})

const e = new ObjectId(hex(1))
const s = new ObjectId(hex(2))
const at = new Date('2025-01-03T00:00:00.000Z')
const later = new Date('2025-01-03T00:10:00.000Z')

t.test('the section lock stamps the database\'s clock and reads the section and the rules', async t => {
  t.strictSame(lockSection(e, s), {
    filter: { _id: e, 'sections._id': s },
    update: [{ $set: { lockedAt: '$$NOW' } }],
    projection: {
      sections: { $elemMatch: { _id: s } }, ownerId: 1, holdSeconds: 1, maxPerUser: 1, waitlistOfferSeconds: 1, status: 1, salesStart: 1, salesEnd: 1, lockedAt: 1
    }
  }, 'a pipeline update: $$NOW is the server\'s time; no match (no such section) writes nothing')
  t.strictSame(sectionProjection(s), { sections: { $elemMatch: { _id: s } } })

  const section = { _id: s, name: 'Floor', price: 9.5, capacity: 10, remaining: 3, held: 2, sold: 5 }
  const open = { status: 'published', salesStart: null, salesEnd: null }
  t.strictSame(sectionState({ sections: [section], lockedAt: at }), {
    remaining: 3, capacity: 10, price: 9.5, sale: open, owner: '', holdSeconds: null, maxPerUser: null, nextExpiry: null, waiting: 0, offerSeconds: null, now: at
  }, 'no owner, no rules, no holds, none waiting (a section from before the list); no status: published, no window')
  t.strictSame(sectionState({
    sections: [{ ...section, nextExpiry: later, waiting: 2 }], ownerId: 'o', holdSeconds: 60, maxPerUser: 4, waitlistOfferSeconds: 600, lockedAt: at
  }), {
    remaining: 3, capacity: 10, price: 9.5, sale: open, owner: 'o', holdSeconds: 60, maxPerUser: 4, nextExpiry: later, waiting: 2, offerSeconds: 600, now: at
  })
  t.strictSame(sectionState({ sections: [section], status: 'draft', salesStart: at, salesEnd: later, lockedAt: at })?.sale,
    { status: 'draft', salesStart: at, salesEnd: later }, 'the event\'s status and window')
  t.strictSame(sectionState({ sections: [section], status: 'cancelled', lockedAt: at })?.sale, { status: 'cancelled', salesStart: null, salesEnd: null })
  t.equal(sectionState({ lockedAt: at }), null, 'no such section')
  t.throws(() => sectionState({ sections: [section] }), 'no clock, no decision')
})

t.test('due holds and the next one', async t => {
  t.strictSame(dueHoldsFilter(s, at), { sectionId: s, status: 'held', expiresAt: { $lte: at } })
  t.strictSame(laterHoldsFilter(s, at), { sectionId: s, status: 'held', expiresAt: { $gt: at } })
  t.strictSame(FIRST_TO_EXPIRE, { expiresAt: 1 })
  const held = BOOKING_INDEXES.find(i => i.name === 'bookings_held_expiry')
  t.strictSame(held, { key: { sectionId: 1, expiresAt: 1 }, name: 'bookings_held_expiry', partialFilterExpression: { status: 'held' } },
    'the queries name status held, so the partial index serves them')
})

t.test('the section\'s guarded write', async t => {
  const counters = { remaining: -4, capacity: 0, held: 3, sold: 1, waiting: 0 }
  t.strictSame(sectionUpdate(e, s, { ...counters, nextExpiry: { replace: false, at: null } }), {
    filter: { _id: e, sections: { $elemMatch: { _id: s, remaining: { $gte: 4 } } } },
    update: { $inc: { 'sections.$.remaining': -4, 'sections.$.held': 3, 'sections.$.sold': 1 } }
  }, 'seats taken only if that many remain; nextExpiry untouched')
  t.strictSame(sectionUpdate(e, s, { remaining: 2, capacity: 0, held: -2, sold: 0, waiting: 0, nextExpiry: { replace: false, at: null } }).filter,
    { _id: e, sections: { $elemMatch: { _id: s } } }, 'seats given back need no guard')
  t.strictSame(sectionUpdate(e, s, { remaining: 0, capacity: 0, held: 0, sold: 0, waiting: 0, nextExpiry: { replace: false, at: later } }).update, {
    $inc: { 'sections.$.remaining': 0, 'sections.$.held': 0, 'sections.$.sold': 0 },
    $min: { 'sections.$.nextExpiry': later }
  }, 'a new hold moves the next expiry earlier, never later')
  t.strictSame(sectionUpdate(e, s, { remaining: 2, capacity: 0, held: -2, sold: 0, waiting: 0, nextExpiry: { replace: true, at: later } }).update, {
    $inc: { 'sections.$.remaining': 2, 'sections.$.held': -2, 'sections.$.sold': 0 },
    $set: { 'sections.$.nextExpiry': later }
  }, 'due holds read: replaced')
  t.strictSame(sectionUpdate(e, s, { remaining: 2, capacity: 0, held: -2, sold: 0, waiting: 0, nextExpiry: { replace: true, at: null } }).update, {
    $inc: { 'sections.$.remaining': 2, 'sections.$.held': -2, 'sections.$.sold': 0 },
    $unset: { 'sections.$.nextExpiry': '' }
  }, 'no holds left: removed, never stored as null')
})

t.test('the section\'s guarded write of an edit: capacity moved, name and price set', async t => {
  const none = { held: 0, sold: 0, waiting: 0, nextExpiry: { replace: false, at: null } }
  t.strictSame(sectionUpdate(e, s, { ...none, remaining: 5, capacity: 5 }), {
    filter: { _id: e, sections: { $elemMatch: { _id: s } } },
    update: { $inc: { 'sections.$.remaining': 5, 'sections.$.held': 0, 'sections.$.sold': 0, 'sections.$.capacity': 5 } }
  }, 'capacity raised: the new seats are on sale')
  t.strictSame(sectionUpdate(e, s, { ...none, remaining: -3, capacity: -3 }), {
    filter: { _id: e, sections: { $elemMatch: { _id: s, remaining: { $gte: 3 } } } },
    update: { $inc: { 'sections.$.remaining': -3, 'sections.$.held': 0, 'sections.$.sold': 0, 'sections.$.capacity': -3 } }
  }, 'capacity lowered only by seats still on sale: the guard is kept')
  t.strictSame(sectionUpdate(e, s, { ...none, remaining: 0, capacity: 0, name: '$$ROOT', price: 12.5 }).update, {
    $inc: { 'sections.$.remaining': 0, 'sections.$.held': 0, 'sections.$.sold': 0 },
    $set: { 'sections.$.name': '$$ROOT', 'sections.$.price': 12.5 }
  }, 'name and price set by operators: a name starting with $ is stored as it is, not read as an expression')
  t.strictSame(sectionUpdate(e, s, { ...none, remaining: 1, capacity: 1, price: 0, nextExpiry: { replace: true, at: later } }).update, {
    $inc: { 'sections.$.remaining': 1, 'sections.$.held': 0, 'sections.$.sold': 0, 'sections.$.capacity': 1 },
    $set: { 'sections.$.price': 0, 'sections.$.nextExpiry': later }
  }, 'a price of 0 is set; with a replaced nextExpiry, one $set')
  t.notOk('$set' in sectionUpdate(e, s, { ...none, remaining: 0, capacity: 0 }).update, 'nothing set: no (empty) $set')
})

t.test('booking changes are guarded by their status, and a confirm by expiresAt', async t => {
  const b = new ObjectId(hex(4))
  t.strictSame(bookingChangeUpdate(s, { id: hex(4), from: 'held', to: 'confirmed', confirms: true, paymentRef: 'pay-1' }, at), {
    filter: { _id: b, sectionId: s, status: 'held', expiresAt: { $gt: at } },
    update: { $set: { status: 'confirmed', confirmedAt: at, paymentRef: 'pay-1' } }
  }, 'confirmed only while the hold runs at the batch\'s moment')
  t.strictSame(bookingChangeUpdate(s, { id: hex(4), from: 'held', to: 'confirmed', confirms: true }, at).update, { $set: { status: 'confirmed', confirmedAt: at } })
  t.strictSame(bookingChangeUpdate(s, { id: hex(4), from: 'confirmed', to: 'cancelled', confirms: false }, at), {
    filter: { _id: b, sectionId: s, status: 'confirmed' },
    update: { $set: { status: 'cancelled', cancelledAt: at } }
  })
  t.strictSame(bookingChangeUpdate(s, { id: hex(4), from: 'held', to: 'expired', confirms: false }, at), {
    filter: { _id: b, sectionId: s, status: 'held' },
    update: { $set: { status: 'expired' } }
  })
  t.strictSame(bookingChangeUpdate(s, { id: hex(4), from: 'held', to: 'cancelled', confirms: true, paymentRef: 'p' }, at), {
    filter: { _id: b, sectionId: s, status: 'held', expiresAt: { $gt: at } },
    update: { $set: { status: 'cancelled', confirmedAt: at, paymentRef: 'p', cancelledAt: at } }
  }, 'a hold confirmed and cancelled in one batch: one write')
})

t.test('users\' seats: gains guarded by the cap, give-backs never below zero', async t => {
  const id = userSeatsId(e, 'u:1')
  t.equal(id, `${hex(1)}:u:1`, 'the event\'s 24 hex digits first: unambiguous whatever the userId')
  t.strictSame(userSeatsUpdate(e, 'u:1', 2, 5), {
    filter: { _id: id, seats: { $lte: 3 } },
    update: { $inc: { seats: 2 }, $setOnInsert: { eventId: e, userId: 'u:1' } },
    upsert: true
  }, 'over the cap the filter misses and the upsert collides with the stored _id')
  t.strictSame(userSeatsUpdate(e, 'u:1', 5, 5)?.filter, { _id: id, seats: { $lte: 0 } }, 'up to the cap exactly')
  t.equal(userSeatsUpdate(e, 'u:1', 6, 5), null, 'a gain alone over the cap (a new document would take it)')
  t.strictSame(userSeatsUpdate(e, 'u:1', 2, null)?.filter, { _id: id }, 'no cap, no guard')
  t.strictSame(userSeatsUpdate(e, 'u:1', -3, 5), { filter: { _id: id, seats: { $gte: 3 } }, update: { $inc: { seats: -3 } }, upsert: false })
})

t.test('the events listed: drafts hidden, their owner\'s, or all', async t => {
  t.strictSame(eventListFilter('none'), { status: { $ne: 'draft' } }, 'an event without status (from before) is published: $ne matches it')
  t.strictSame(eventListFilter({ owner: 'org-1' }), { $or: [{ status: { $ne: 'draft' } }, { ownerId: 'org-1' }] })
  t.strictSame(eventListFilter({ owner: '$where' }), { $or: [{ status: { $ne: 'draft' } }, { ownerId: '$where' }] }, 'the owner is a value, never an operator')
  t.strictSame(eventListFilter('all'), {})
})

t.test('a change of an event: fields set, cleared, sections appended', async t => {
  t.equal(eventChangeUpdate({}, []), null, 'nothing to write')
  t.strictSame(eventChangeUpdate({ status: 'published' }, []), { $set: { status: 'published' } })
  t.strictSame(eventChangeUpdate({
    name: 'Gala', description: '{"$gt": ""}', venue: null, startsAt: '2026-06-01T19:30:00.000Z', endsAt: null,
    salesStart: null, salesEnd: '2026-06-01T18:00:00.000+00:00', holdSeconds: 300, maxPerUser: null
  }, []), {
    $set: { name: 'Gala', description: '{"$gt": ""}', holdSeconds: 300, startsAt: new Date('2026-06-01T19:30:00.000Z'), salesEnd: new Date('2026-06-01T18:00:00.000Z') },
    $unset: { venue: '', maxPerUser: '', endsAt: '', salesStart: '' }
  }, 'moments as Dates; null clears ($unset); fields left out untouched')
  t.strictSame(eventChangeUpdate({ description: '' }, []), { $set: { description: '' } }, 'an empty description is set, not cleared')
  t.strictSame(eventChangeUpdate({ maxPerUser: 4 }, [{ _id: hex(7), name: '$inc', price: 20, capacity: 30, remaining: 0, held: 5, sold: 5, waiting: 2 }]), {
    $set: { maxPerUser: 4 },
    $push: { sections: { $each: [{ _id: new ObjectId(hex(7)), name: '$inc', price: 20, capacity: 30, remaining: 30, held: 0, sold: 0, waiting: 0 }] } }
  }, 'a new section has every seat on sale, and nobody waiting')
  t.strictSame(eventChangeUpdate({ waitlistOfferSeconds: 900 }, []), { $set: { waitlistOfferSeconds: 900 } })
  t.strictSame(eventChangeUpdate({ waitlistOfferSeconds: null }, []), { $unset: { waitlistOfferSeconds: '' } }, 'cleared: WAITLIST_OFFER_SECONDS again')
})

t.test('users\' seats counted anew: the event\'s documents, and its held and confirmed seats per user', async t => {
  const filter = eventUserSeatsFilter(e)
  t.strictSame(filter, { _id: { $gte: `${hex(1)}:`, $lt: `${hex(1)};` } }, 'a range of _id: the index serves it')
  const inRange = (id: string) => id >= `${hex(1)}:` && id < `${hex(1)};`
  for (const user of ['u', '~~~', '!', 'a:b;c']) t.ok(inRange(userSeatsId(e, user)), `${user} is in the event's range`)
  t.notOk(inRange(userSeatsId(new ObjectId(hex(2)), 'u')), 'another event\'s is not')
  t.notOk(inRange(userSeatsId(new ObjectId(hex(0x10)), 'u')), 'nor one whose digits start alike')
  t.strictSame(userSeatsCountPipeline(e), [
    { $match: { eventId: e, status: { $in: ['held', 'confirmed'] } } },
    { $group: { _id: '$userId', seats: { $sum: '$qty' } } }
  ])
  t.strictSame(userSeatsDocuments(e, [{ _id: 'u1', seats: 3 }, { _id: 'u:2', seats: 1 }]), [
    { _id: userSeatsId(e, 'u1'), eventId: e, userId: 'u1', seats: 3 },
    { _id: userSeatsId(e, 'u:2'), eventId: e, userId: 'u:2', seats: 1 }
  ])
})

t.test('an id in uppercase is found nowhere', async t => {
  const upper = 'ABCDEF0123456789ABCDEF01'
  t.equal(parseId(upper), null, 'no ObjectId: getEvents and changeEvent look nothing up')
  t.equal(bookingListFilter({ eventId: upper }), null, 'the bookings list matches nothing')
  t.equal(bookingListFilter({ sectionId: upper }), null)
})

t.test('due sections: a range on the indexed nextExpiry, most overdue first', async t => {
  const pipeline = dueSectionsPipeline(at, 50)
  t.strictSame(pipeline[0], { $match: { 'sections.nextExpiry': { $lte: at } } }, 'first stage: the index')
  t.ok(EVENT_INDEXES.some(i => JSON.stringify(i.key) === JSON.stringify({ 'sections.nextExpiry': 1 })))
  t.match(pipeline, [{}, {}, { $unwind: '$sections' }, { $match: { 'sections.nextExpiry': { $lte: at } } },
    { $sort: { 'sections.nextExpiry': 1 } }, { $limit: 50 }, { $project: { eventId: '$_id', sectionId: '$sections._id' } }])
  t.strictSame(dueSectionFromDocument({ eventId: e, sectionId: s }), { eventId: hex(1), sectionId: hex(2) })
  t.equal(serverTime({ ok: 1, localTime: at }), at)
  t.throws(() => serverTime({ ok: 1 }))
})

t.test('booking list filter', async t => {
  t.strictSame(bookingListFilter({}), {})
  t.strictSame(bookingListFilter({ eventId: hex(1), sectionId: hex(2), userId: 'u1', status: 'cancelled' }), {
    eventId: new ObjectId(hex(1)), sectionId: new ObjectId(hex(2)), userId: 'u1', status: 'cancelled'
  })
  t.strictSame(bookingListFilter({ userId: 'u1' }), { userId: 'u1' })
  for (const status of ['held', 'confirmed', 'cancelled', 'expired'] as const) t.strictSame(bookingListFilter({ status }), { status })
  t.equal(bookingListFilter({ eventId: 'nope' }), null, 'a malformed id matches nothing')
})

t.test('indexes: unique partial idempotency key, list filters sorted newest first', async t => {
  const idem = BOOKING_INDEXES.find(i => i.name === 'bookings_idempotency_key')
  t.same(idem, { key: { idempotencyKey: 1 }, name: 'bookings_idempotency_key', unique: true, partialFilterExpression: { idempotencyKey: { $exists: true } } })
  for (const field of ['eventId', 'sectionId', 'userId', 'status']) {
    t.ok(BOOKING_INDEXES.some(i => JSON.stringify(i.key) === JSON.stringify({ [field]: 1, ...NEWEST_FIRST as object })), `index on ${field}, newest first`)
  }
  t.same(EVENT_INDEXES.map(i => i.key), [NEWEST_FIRST, { 'sections.nextExpiry': 1 }])
  const names = [...BOOKING_INDEXES, ...EVENT_INDEXES].map(i => i.name)
  t.equal(new Set(names).size, names.length, 'every index is named (re-creating is a no-op)')
  t.same(TRANSACTION_OPTIONS, { readConcern: { level: 'snapshot' }, writeConcern: { w: 'majority' }, readPreference: 'primary' })
})

t.test('transactions need a replica set or mongos', async t => {
  t.ok(supportsTransactions({ isWritablePrimary: true, setName: 'rs0' }))
  t.ok(supportsTransactions({ msg: 'isdbgrid' }))
  t.notOk(supportsTransactions({ isWritablePrimary: true }), 'standalone')
})

t.test('error classification on driver errors', async t => {
  const duplicate = new MongoServerError({ message: 'E11000 duplicate key error', code: 11000 })
  const bulkDuplicate = new MongoBulkWriteError({ message: 'E11000', code: 11000, writeErrors: [] }, {} as BulkWriteResult)
  t.ok(isDuplicateKeyError(duplicate))
  t.ok(isRetryableMongoError(duplicate))
  t.ok(isRetryableMongoError(bulkDuplicate), 'insertMany reports it as a bulk write error')
  t.notOk(isRetryableMongoError(new MongoServerError({ message: 'bad', code: 2 })))
  t.notOk(isRetryableMongoError(new RetryableConflict('x')), 'our own conflict is handled by the store, not here')
  t.ok(isNamespaceExists(new MongoServerError({ message: 'Collection already exists', code: 48 })))
  t.notOk(isNamespaceExists(duplicate))

  const selection = new MongoServerSelectionError('Server selection timed out', { type: 'Unknown', servers: new Map() } as never)
  for (const err of [selection, new MongoNetworkError('socket closed'), new MongoNetworkTimeoutError('timed out'),
    new MongoTopologyClosedError(), new MongoServerError({ message: 'not primary', code: 10107 }),
    new MongoServerError({ message: 'shutting down', code: 91 })]) {
    t.ok(isMongoUnavailable(err), `${err.name}${err.code === undefined ? '' : ` ${err.code}`} means unavailable`)
    t.notOk(isRetryableMongoError(err))
  }
  for (const err of [duplicate, new MongoServerError({ message: 'bad', code: 2 }), new MongoError('x'), new Error('ECONNREFUSED'), null, 'x']) {
    t.notOk(isMongoUnavailable(err), `${String((err as Error | null)?.message ?? err)} is not unavailability`)
  }
})

t.test('a real server selection failure is classified as unavailable', async t => {
  // port 1 on loopback refuses at once: the driver's own error, no server needed
  const client = new MongoClient('mongodb://127.0.0.1:1/x', { serverSelectionTimeoutMS: 200 })
  const err = await client.connect().then(() => null, (e: unknown) => e)
  await client.close()
  t.ok(err instanceof MongoServerSelectionError)
  t.ok(isMongoUnavailable(err))
})

t.test('the section\'s guarded write moves its count of waiting entries', async t => {
  const none = { remaining: 0, capacity: 0, held: 0, sold: 0, nextExpiry: { replace: false, at: null } }
  t.strictSame(sectionUpdate(e, s, { ...none, waiting: 2 }), {
    filter: { _id: e, sections: { $elemMatch: { _id: s } } },
    update: { $inc: { 'sections.$.remaining': 0, 'sections.$.held': 0, 'sections.$.sold': 0, 'sections.$.waiting': 2 } }
  }, 'joins counted: $inc starts a section from before the list at 0')
  t.strictSame(sectionUpdate(e, s, { ...none, remaining: -2, held: 2, waiting: -1 }), {
    filter: { _id: e, sections: { $elemMatch: { _id: s, remaining: { $gte: 2 }, waiting: { $gte: 1 } } } },
    update: { $inc: { 'sections.$.remaining': -2, 'sections.$.held': 2, 'sections.$.sold': 0, 'sections.$.waiting': -1 } }
  }, 'an entry offered leaves the count, never below zero')
  t.notOk('sections.$.waiting' in (sectionUpdate(e, s, { ...none, waiting: 0 }).update.$inc ?? {}), 'unchanged: not written')
})

const entry: StoredEntry = {
  _id: hex(8),
  eventId: hex(1),
  sectionId: hex(2),
  userId: 'u1',
  qty: 2,
  position: 3,
  status: 'waiting',
  createdAt: at.toISOString(),
  eventOwner: 'org-1'
}

t.test('waiting-list entries map to documents and back', async t => {
  const doc = entryToDocument(entry, at)
  t.strictSame(doc, {
    _id: new ObjectId(hex(8)),
    eventId: e,
    sectionId: s,
    userId: 'u1',
    qty: 2,
    position: 3,
    status: 'waiting',
    createdAt: at,
    updatedAt: at,
    eventOwner: 'org-1',
    active: true
  }, 'ids as ObjectIds, joined at the batch\'s moment, active while waiting')
  t.notOk('bookingId' in doc)
  t.strictSame(entryFromDocument(doc), entry, 'the round trip is exact; `active` and updatedAt stay inside')
  const served = { ...entry, status: 'confirmed' as const, bookingId: hex(9) + hex(2) }
  const servedDoc = entryToDocument(served, at)
  t.notOk('active' in servedDoc, 'served: no longer active')
  t.equal(servedDoc.bookingId, served.bookingId)
  t.strictSame(entryFromDocument(servedDoc), served)
})

t.test('the batch\'s reads of the waiting list', async t => {
  t.strictSame(waitingEntriesFilter(s, 4), { sectionId: s, status: 'waiting', qty: { $lte: 4 } })
  t.strictSame(BY_POSITION, { position: 1 })
  t.strictSame(LAST_POSITION, { position: -1 })
  t.equal(namedEntriesFilter(s, [], []), null, 'nothing named: no read')
  t.strictSame(namedEntriesFilter(s, [hex(8), 'nope', hex(0xab).toUpperCase()], []), { sectionId: s, $or: [{ _id: { $in: [new ObjectId(hex(8))] } }] },
    'malformed ids name nothing')
  t.strictSame(namedEntriesFilter(s, [], ['u1', '$where']), { sectionId: s, $or: [{ userId: { $in: ['u1', '$where'] }, active: true }] },
    'the users\' entries still waiting or offered; a userId is a value')
  t.strictSame(namedEntriesFilter(s, [hex(8)], ['u1']), {
    sectionId: s, $or: [{ _id: { $in: [new ObjectId(hex(8))] } }, { userId: { $in: ['u1'] }, active: true }]
  })
})

t.test('an entry\'s move is guarded by its status; `active` follows it', async t => {
  const id = new ObjectId(hex(8))
  t.strictSame(entryChangeUpdate(s, { id: hex(8), from: 'waiting', to: 'offered', bookingId: hex(9) + hex(2) }, at), {
    filter: { _id: id, sectionId: s, status: 'waiting' },
    update: { $set: { status: 'offered', updatedAt: at, bookingId: hex(9) + hex(2), active: true } }
  }, 'an offer names its hold')
  t.strictSame(entryChangeUpdate(s, { id: hex(8), from: 'offered', to: 'confirmed' }, at), {
    filter: { _id: id, sectionId: s, status: 'offered' },
    update: { $set: { status: 'confirmed', updatedAt: at }, $unset: { active: '' } }
  }, 'served: its user may join again')
  for (const to of ['lapsed', 'skipped', 'left'] as const) {
    t.strictSame(entryChangeUpdate(s, { id: hex(8), from: 'waiting', to }, at).update.$unset, { active: '' }, `${to}: inactive`)
  }
  t.throws(() => entryChangeUpdate(s, { id: 'nope', from: 'waiting', to: 'left' }, at), 'an id the batch did not read or make is a bug')
})

t.test('the event\'s waiting list: by section, then position, after a cursor', async t => {
  const a = new ObjectId(hex(2))
  t.strictSame(waitlistListFilter({ eventId: hex(1) }), { eventId: e })
  t.strictSame(waitlistListFilter({ eventId: hex(1), sectionId: hex(2), userId: 'u1' }), { eventId: e, sectionId: s, userId: 'u1' })
  t.strictSame(waitlistListFilter({ eventId: hex(1), after: { sectionId: hex(2), position: 20 } }), {
    eventId: e, $or: [{ sectionId: { $gt: a } }, { sectionId: a, position: { $gt: 20 } }]
  }, 'a later section, or the same one further on')
  t.strictSame(waitlistListFilter({ eventId: hex(1), sectionId: hex(2), after: { sectionId: hex(2), position: 20 } }), {
    eventId: e, sectionId: s, $or: [{ sectionId: { $gt: a } }, { sectionId: a, position: { $gt: 20 } }]
  })
  t.equal(waitlistListFilter({ eventId: 'nope' }), null, 'a malformed id matches nothing')
  t.equal(waitlistListFilter({ eventId: hex(1), sectionId: hex(0xab).toUpperCase() }), null)
  t.equal(waitlistListFilter({ eventId: hex(1), after: { sectionId: 'z'.repeat(24), position: 1 } }), null)
  t.strictSame(WAITLIST_ORDER, { sectionId: 1, position: 1 })
  const ids = [hex(0x0a), hex(0x0b), hex(0x100), 'f' + hex(1).slice(1)]
  const byOid = [...ids].sort((x, y) => Buffer.compare(new ObjectId(x).id, new ObjectId(y).id))
  t.same(byOid, [...ids].sort(), 'ObjectIds order as their hex text (the SQL store\'s order)')
})

t.test('waiting-list indexes: one position, one active entry per user and section', async t => {
  t.strictSame(WAITLIST_INDEXES.find(i => i.name === 'waitlist_position'), { key: { sectionId: 1, position: 1 }, name: 'waitlist_position', unique: true })
  t.strictSame(WAITLIST_INDEXES.find(i => i.name === 'waitlist_active'),
    { key: { sectionId: 1, userId: 1 }, name: 'waitlist_active', unique: true, partialFilterExpression: { active: true } })
  t.ok(WAITLIST_INDEXES.some(i => JSON.stringify(i.key) === JSON.stringify({ sectionId: 1, status: 1, position: 1 })), 'the batch\'s read of waiting entries')
  t.ok(WAITLIST_INDEXES.some(i => JSON.stringify(i.key) === JSON.stringify({ eventId: 1, ...WAITLIST_ORDER as object })), 'the event\'s list')
  const names = WAITLIST_INDEXES.map(i => i.name)
  t.equal(new Set(names).size, names.length)
})
