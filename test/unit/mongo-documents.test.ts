import {
  MongoBulkWriteError, MongoClient, MongoError, MongoNetworkError, MongoNetworkTimeoutError, MongoServerError,
  MongoServerSelectionError, MongoTopologyClosedError, ObjectId, type BulkWriteResult
} from 'mongodb'
import t from 'tap'
import type { StoredBooking } from '../../lib/allocation.ts'
import { RetryableConflict } from '../../lib/errors.ts'
import {
  BOOKING_INDEXES, EVENT_INDEXES, NEWEST_FIRST, TRANSACTION_OPTIONS,
  bookingFromDocument, bookingListFilter, bookingToDocument, cancelBookingUpdate, decrementSection,
  eventFromDocument, eventToDocument, incrementSection, isDuplicateKeyError, isMongoUnavailable,
  isRetryableMongoError, parseId, sectionProjection, supportsTransactions
} from '../../lib/store/mongo-documents.ts'
import type { Event } from '../../lib/schemas.ts'

const hex = (n: number) => n.toString(16).padStart(24, '0')

const event: Event = {
  _id: hex(1),
  name: 'Concert',
  createdAt: '2025-01-02T03:04:05.678Z',
  sections: [
    { _id: hex(2), name: 'Floor', price: 99.99, capacity: 10, remaining: 7 },
    { _id: hex(3), name: 'Balcony', price: 10, capacity: 5, remaining: 5 }
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

t.test('parseId accepts 24 hex digits only', async t => {
  t.same(parseId(hex(10)), new ObjectId(hex(10)))
  t.equal(parseId('zz'.repeat(12)), null)
  t.equal(parseId('abcdefghijkl'), null, 'a 12-character string is not taken as 12 raw bytes')
  t.equal(parseId(''), null)
})

t.test('events map to documents and back, sections in order', async t => {
  const doc = eventToDocument(event)
  t.ok(doc._id instanceof ObjectId)
  t.equal(doc._id.toHexString(), event._id)
  t.ok(doc.createdAt instanceof Date)
  t.same(doc.sections.map(s => [s._id.toHexString(), s.name, s.remaining]), [[hex(2), 'Floor', 7], [hex(3), 'Balcony', 5]])
  t.ok(doc.sections.every(s => s._id instanceof ObjectId), 'section ids are ObjectIds')
  t.strictSame(eventFromDocument(doc), event, 'round trip is exact')
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
})

t.test('guarded updates have the exact shapes', async t => {
  const e = new ObjectId(hex(1))
  const s = new ObjectId(hex(2))
  t.strictSame(decrementSection(e, s, 4), {
    filter: { _id: e, sections: { $elemMatch: { _id: s, remaining: { $gte: 4 } } } },
    update: { $inc: { 'sections.$.remaining': -4 } }
  }, 'decrement only where remaining >= total')
  t.strictSame(incrementSection(e, s, 2), {
    filter: { _id: e, sections: { $elemMatch: { _id: s } } },
    update: { $inc: { 'sections.$.remaining': 2 } }
  })
  const now = new Date('2025-01-03T00:00:00.000Z')
  const b = new ObjectId(hex(4))
  t.strictSame(cancelBookingUpdate(b, now), {
    filter: { _id: b, status: 'confirmed' },
    update: { $set: { status: 'cancelled', cancelledAt: now } }
  }, 'only a confirmed booking is cancelled')
  t.strictSame(sectionProjection(s), { sections: { $elemMatch: { _id: s } } })
})

t.test('booking list filter', async t => {
  t.strictSame(bookingListFilter({}), {})
  t.strictSame(bookingListFilter({ eventId: hex(1), sectionId: hex(2), userId: 'u1', status: 'cancelled' }), {
    eventId: new ObjectId(hex(1)), sectionId: new ObjectId(hex(2)), userId: 'u1', status: 'cancelled'
  })
  t.strictSame(bookingListFilter({ userId: 'u1' }), { userId: 'u1' })
  t.equal(bookingListFilter({ eventId: 'nope' }), null, 'a malformed id matches nothing')
})

t.test('indexes: unique partial idempotency key, list filters sorted newest first', async t => {
  const idem = BOOKING_INDEXES.find(i => i.name === 'bookings_idempotency_key')
  t.same(idem, { key: { idempotencyKey: 1 }, name: 'bookings_idempotency_key', unique: true, partialFilterExpression: { idempotencyKey: { $exists: true } } })
  for (const field of ['eventId', 'sectionId', 'userId', 'status']) {
    t.ok(BOOKING_INDEXES.some(i => JSON.stringify(i.key) === JSON.stringify({ [field]: 1, ...NEWEST_FIRST as object })), `index on ${field}, newest first`)
  }
  t.same(EVENT_INDEXES.map(i => i.key), [NEWEST_FIRST])
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
