/**
 * The booking service on a real embedded store and the in-process lock:
 * batching, the sold-out fast path, lock deadlines and cancellation.
 */
import t, { type Test } from 'tap'
import { Registry } from 'prom-client'
import { createBookingService, type BookingServiceOptions } from '../../lib/booking-service.ts'
import type { Principal } from '../../lib/auth/principal.ts'
import { BusyError, NotFoundError, SoldOutError } from '../../lib/errors.ts'
import { localLocker } from '../../lib/lock/local-locker.ts'
import { sectionLockKey } from '../../lib/lock/locker.ts'
import { createMetrics } from '../../lib/metrics.ts'
import { PGlite } from '@electric-sql/pglite'
import { pgliteClient } from '../../lib/store/pglite-client.ts'
import { createSqlStore } from '../../lib/store/sql-store.ts'
import type { Store } from '../../lib/store/store.ts'
import { tempDataDir } from '../helpers/databases.ts'

/** A box office booking on behalf of the users it names. */
const SERVICE: Principal = { sub: 'box-office', roles: ['service'] }

let db: PGlite
let store: Store
t.before(async () => {
  db = await PGlite.create(tempDataDir(t))
  store = createSqlStore(pgliteClient(db), { kind: 'embedded' })
  await store.init()
})
t.teardown(async () => await db.close())

/** The real store, with its batch transactions counted. */
function counting (inner: Store) {
  const calls = { bookBatch: 0 }
  const wrapped: Store = { ...inner, sectionBatch: async (...args) => { calls.bookBatch++; return await inner.sectionBatch(...args) } }
  return { store: wrapped, calls }
}

function service (overrides: Partial<BookingServiceOptions> & { store: Store }) {
  const metrics = createMetrics(new Registry())
  const locker = overrides.locker ?? localLocker()
  const svc = createBookingService({ locker, metrics, batchMax: 256, lockWaitMs: 5000, soldOutCacheMs: 60_000, holdTtlMs: 600_000, ...overrides })
  return { svc, metrics, locker }
}

async function section (capacity: number) {
  const event = await store.createEvent({ name: 'Svc', sections: [{ name: 'A', price: 10, capacity }] }, 'organizer')
  return { eventId: event._id, sectionId: event.sections[0]._id }
}

async function batchCount (metrics: ReturnType<typeof createMetrics>): Promise<number> {
  const { values } = await metrics.batchSize.get()
  return values.find(v => v.metricName === 'booking_batch_size_count')?.value ?? 0
}

async function outcomes (p: Array<Promise<unknown>>) {
  const settled = await Promise.allSettled(p)
  return {
    ok: settled.filter(s => s.status === 'fulfilled').length,
    soldOut: settled.filter(s => s.status === 'rejected' && s.reason instanceof SoldOutError).length,
    other: settled.filter(s => s.status === 'rejected' && !(s.reason instanceof SoldOutError)).map(s => (s as PromiseRejectedResult).reason)
  }
}

t.test('concurrent requests for one section are decided in few batches', async (t: Test) => {
  const ids = await section(100)
  const { svc, metrics } = service({ store })
  const result = await outcomes(Array.from({ length: 60 }, (_, i) => svc.book(SERVICE, { ...ids, qty: 1, userId: `u${i}` })))
  t.same([result.ok, result.soldOut, result.other], [60, 0, []])
  const batches = await batchCount(metrics)
  t.ok(batches < 60, `60 requests took ${batches} batches`)
  t.equal((await store.getEvent(ids.eventId))!.sections[0].remaining, 40)
})

t.test('BATCH_MAX=1: one transaction per booking, same answers', async (t: Test) => {
  const ids = await section(10)
  const { svc, metrics } = service({ store, batchMax: 1 })
  const result = await outcomes(Array.from({ length: 15 }, (_, i) => svc.book(SERVICE, { ...ids, qty: 1, userId: `u${i}` })))
  t.same([result.ok, result.soldOut, result.other], [10, 5, []])
  t.equal(await batchCount(metrics), 10, 'one batch per request until sold out; the rest answered from memory or their own batch')
})

t.test('a sold-out section is answered from memory, without a transaction', async (t: Test) => {
  const ids = await section(2)
  const { store: counted, calls } = counting(store)
  const { svc } = service({ store: counted })
  await svc.book(SERVICE, { ...ids, qty: 2, userId: 'early' })
  const before = calls.bookBatch
  const result = await outcomes(Array.from({ length: 20 }, (_, i) => svc.book(SERVICE, { ...ids, qty: 1, userId: `late${i}` })))
  t.same([result.ok, result.soldOut], [0, 20])
  t.equal(calls.bookBatch, before, 'no transaction for requests on a known sold-out section')
})

t.test('replay after sell-out returns the original booking', async (t: Test) => {
  const ids = await section(1)
  const { svc } = service({ store })
  const key = `replay-${Math.random()}`
  const original = await svc.book(SERVICE, { ...ids, qty: 1, userId: 'u', idempotencyKey: key })
  await svc.book(SERVICE, { ...ids, qty: 1, userId: 'v' }).catch(() => undefined) // learns sold out
  const again = await svc.book(SERVICE, { ...ids, qty: 1, userId: 'u', idempotencyKey: key })
  t.same(again, { booking: original.booking, replayed: true })
})

t.test('lock contention past the deadline is BUSY, never SOLD_OUT', async (t: Test) => {
  const ids = await section(5)
  const { svc, locker } = service({ store, lockWaitMs: 50 })
  let release!: () => void
  const held = locker.withLock(sectionLockKey(ids.eventId, ids.sectionId), 5000, async () => await new Promise<void>(resolve => { release = resolve }))
  const err = await svc.book(SERVICE, { ...ids, qty: 1, userId: 'waiting' }).catch(e => e)
  t.ok(err instanceof BusyError, `got ${err?.constructor?.name}`)
  t.equal(err.code, 'BUSY')
  release()
  await held
  const ok = await svc.book(SERVICE, { ...ids, qty: 1, userId: 'after' })
  t.equal(ok.booking.qty, 1, 'books once the lock is free')
  t.equal((await store.getEvent(ids.eventId))!.sections[0].remaining, 4, 'the BUSY request changed nothing')
})

t.test('cancelling ends the sold-out memory at once in this instance', async (t: Test) => {
  const ids = await section(1)
  const { svc } = service({ store })
  const { booking } = await svc.book(SERVICE, { ...ids, qty: 1, userId: 'a' })
  t.ok(await svc.book(SERVICE, { ...ids, qty: 1, userId: 'b' }).catch(e => e) instanceof SoldOutError)
  const cancelled = await svc.cancel(SERVICE, booking._id)
  t.equal(cancelled.status, 'cancelled')
  t.same(await svc.cancel(SERVICE, booking._id), cancelled, 'cancelling again answers the same booking')
  const rebooked = await svc.book(SERVICE, { ...ids, qty: 1, userId: 'b' })
  t.equal(rebooked.booking.userId, 'b', 'the freed seat is sold at once')
})

t.test('unknown section and booking: NotFoundError', async (t: Test) => {
  const ids = await section(1)
  const { svc } = service({ store })
  t.ok(await svc.book(SERVICE, { ...ids, sectionId: '0123456789abcdef01234567', qty: 1, userId: 'u' }).catch(e => e) instanceof NotFoundError)
  t.ok(await svc.cancel(SERVICE, '0123456789abcdef01234567').catch(e => e) instanceof NotFoundError)
  t.ok(await svc.getEvent('0123456789abcdef01234567').catch(e => e) instanceof NotFoundError)
})

t.test('drain waits for queued bookings', async (t: Test) => {
  const ids = await section(50)
  const { svc } = service({ store })
  const pending = Array.from({ length: 30 }, (_, i) => svc.book(SERVICE, { ...ids, qty: 1, userId: `d${i}` }))
  await svc.drain()
  const states = await Promise.race([Promise.allSettled(pending), new Promise(resolve => setImmediate(() => resolve('pending')))])
  t.not(states, 'pending', 'every booking was decided when drain resolved')
})

t.test('back-to-back batches of a busy section share one turn of its lock', async (t: Test) => {
  const ids = await section(100)
  const inner = localLocker()
  let turns = 0
  const locker = { ...inner, withLock: async <T>(key: string, waitMs: number, fn: () => Promise<T>) => { turns++; return await inner.withLock(key, waitMs, fn) } }
  // a clock that stands still: the turn ends when the queue does, never on time
  const { svc, metrics } = service({ store, locker, batchMax: 5, clock: () => 0 })
  const result = await outcomes(Array.from({ length: 60 }, (_, i) => svc.book(SERVICE, { ...ids, qty: 1, userId: `turn${i}` })))
  t.same([result.ok, result.soldOut, result.other], [60, 0, []])
  t.equal(await batchCount(metrics), 12, 'batches of at most 5')
  t.equal(turns, 1, 'one lock for all 12 batches')
  t.equal((await store.getEvent(ids.eventId))!.sections[0].remaining, 40)
})
