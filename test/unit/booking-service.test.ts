/**
 * The booking service on a real embedded store and the in-process lock:
 * batching, the sold-out fast path, lock deadlines and cancellation.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import type { BookingServiceOptions } from '../../lib/service/booking-service.ts'
import { BusyError, ForbiddenError, NotFoundError, SoldOutError } from '../../lib/domain/errors.ts'
import { sectionLockKey, type Locker } from '../../lib/cluster/locker.ts'
import type { createMetrics } from '../../lib/support/metrics.ts'
import type { PGlite } from '@electric-sql/pglite'
import { localLocker } from '../../lib/cluster/local-locker.ts'
import type { Principal } from '../../lib/domain/principal.ts'
import type { Store } from '../../lib/store/store.ts'
import { SERVICE, bookingService, counting, embeddedStore } from '../helpers/booking-service.ts'
import { pollUntil } from '../helpers/poll.ts'

let store: Store
let db: PGlite
t.before(async () => { ({ store, db } = await embeddedStore(t)) })

const service = bookingService

async function section (capacity: number) {
  return (await sections([capacity]))[0]
}

async function sections (capacities: number[]) {
  const event = await store.createEvent({ name: 'Svc', sections: capacities.map((capacity, i) => ({ name: `S${i}`, price: 10, capacity })) }, 'organizer')
  return event.sections.map(s => ({ eventId: event._id, sectionId: s._id }))
}

async function remainingOf (ids: Array<{ eventId: string, sectionId: string }>): Promise<number[]> {
  const event = await store.getEvent(ids[0].eventId)
  return ids.map(({ sectionId }) => event!.sections.find(s => s._id === sectionId)!.remaining)
}

async function batchCount (metrics: ReturnType<typeof createMetrics>): Promise<number> {
  const { values } = await metrics.batchSize.get()
  return values.find(v => v.metricName === 'booking_batch_size_count')?.value ?? 0
}

/** The promise's value, or 'waiting' if it has not settled within `ms` (a failed test ends rather than hangs). */
async function within<T> (promise: Promise<T>, ms: number): Promise<T | 'waiting'> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([promise, new Promise<'waiting'>(resolve => { timer = setTimeout(() => resolve('waiting'), ms) })])
  } finally {
    clearTimeout(timer)
  }
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
  const locker: Locker = { ...inner, lockSome: async (keys, waitMs) => { turns++; return await inner.lockSome(keys, waitMs) } }
  // a clock that stands still: the turn ends when the queue does, never on time
  const { svc, metrics } = service({ store, locker, batchMax: 5, clock: () => 0 })
  const result = await outcomes(Array.from({ length: 60 }, (_, i) => svc.book(SERVICE, { ...ids, qty: 1, userId: `turn${i}` })))
  t.same([result.ok, result.soldOut, result.other], [60, 0, []])
  t.equal(await batchCount(metrics), 12, 'batches of at most 5')
  t.equal(turns, 1, 'one lock for all 12 batches')
  t.equal((await store.getEvent(ids.eventId))!.sections[0].remaining, 40)
})

t.test('requests spread over sections are decided together: one transaction for all', async (t: Test) => {
  const ids = await sections([10, 10, 10, 10])
  const { store: counted, calls } = counting(store)
  const { svc, metrics } = service({ store: counted, batchConcurrency: 1 })
  const result = await outcomes(ids.flatMap((section, s) => Array.from({ length: 5 }, (_, i) => svc.book(SERVICE, { ...section, qty: 1, userId: `spread${s}-${i}` }))))
  t.same([result.ok, result.soldOut, result.other], [20, 0, []])
  t.equal(calls.bookBatch, 1, 'one transaction')
  const { values } = await metrics.batchSections.get()
  t.equal(values.find(v => v.metricName === 'booking_batch_sections_sum')?.value, 4, 'its batch held the four sections')
  t.same(await remainingOf(ids), [5, 5, 5, 5])
})

t.test('batchMax counts items over all sections; each section first come first served, never sold out while it has seats', async (t: Test) => {
  const ids = await sections([2, 2, 2])
  const sizes: number[] = []
  const recorded: Store = { ...store, sectionsBatch: async (groups, deadline) => { sizes.push(groups.reduce((n, g) => n + g.ops.length, 0)); return await store.sectionsBatch(groups, deadline) } }
  const { svc } = service({ store: recorded, batchMax: 2, batchConcurrency: 1 })
  const asked = ids.flatMap((section, s) => Array.from({ length: 3 }, (_, i) => ({ section, userId: `fcfs${s}-${i}` })))
  const settled = await Promise.allSettled(asked.map(({ section, userId }) => svc.book(SERVICE, { ...section, qty: 1, userId })))
  const winners = settled.flatMap((s, i) => s.status === 'fulfilled' ? [asked[i].userId] : [])
  t.same(winners.sort(), ['fcfs0-0', 'fcfs0-1', 'fcfs1-0', 'fcfs1-1', 'fcfs2-0', 'fcfs2-1'], 'the first two of each section')
  t.ok(settled.every(s => s.status === 'fulfilled' || s.reason instanceof SoldOutError), 'the third of each is sold out, nothing else')
  t.ok(sizes.length > 0 && sizes.every(n => n <= 2), `at most 2 operations per transaction: ${sizes.join(', ')}`)
  t.same(await remainingOf(ids), [0, 0, 0])
})

t.test('a section whose lock another instance holds waits while the others go on, and is never told sold out', async (t: Test) => {
  const ids = await sections([3, 3, 3])
  const taken = sectionLockKey(ids[1].eventId, ids[1].sectionId)
  const inner = localLocker()
  // another instance holds section 1 for a while
  const elsewhere = await inner.lockSome([taken], 0)
  const asks: string[][] = []
  const locker: Locker = { ...inner, lockSome: async (keys, waitMs) => { asks.push([...keys]); return await inner.lockSome(keys, waitMs) } }
  const { svc } = service({ store, locker, batchConcurrency: 1 })
  const first = ids.map((section, i) => svc.book(SERVICE, { ...section, qty: 1, userId: `held${i}` }))
  const early = await within(Promise.all([first[0], first[2]]), 2000)
  t.not(early, 'waiting', 'sections 0 and 2 were decided while section 1 was held elsewhere')
  t.same(await remainingOf(ids), [2, 3, 2], 'section 1 untouched so far')
  elsewhere.release()
  const later = await first[1]
  t.equal(later.booking.status, 'confirmed', 'section 1 booked once its lock was free, not sold out')
  t.ok(asks[0].length === 3, 'the three locks were asked for together')
  t.same(await remainingOf(ids), [2, 2, 2])
})

t.test('at most batchConcurrency batches run at once', async (t: Test) => {
  const ids = await sections(Array.from({ length: 8 }, () => 5))
  let now = 0
  let most = 0
  const slow: Store = {
    ...store,
    sectionsBatch: async (groups, deadline) => {
      most = Math.max(most, ++now)
      await new Promise(resolve => setTimeout(resolve, 20))
      try { return await store.sectionsBatch(groups, deadline) } finally { now-- }
    }
  }
  const { svc } = service({ store: slow, batchMax: 1, batchConcurrency: 3 })
  const result = await outcomes(ids.map((section, i) => svc.book(SERVICE, { ...section, qty: 1, userId: `conc${i}` })))
  t.same([result.ok, result.other], [8, []])
  t.equal(most, 3, 'three at once, never more')
})

/** The store, its first batch held until `open()`; every batch's sections recorded as it begins. */
function gatedFirst (inner: Store) {
  let open!: () => void
  const gate = new Promise<void>(resolve => { open = resolve })
  const begun: string[][] = []
  const gated: Store = {
    ...inner,
    sectionsBatch: async (groups, deadline) => {
      begun.push(groups.map(g => g.sectionId))
      if (begun.length === 1) await gate
      return await inner.sectionsBatch(groups, deadline)
    }
  }
  /** resolves once the first batch has begun */
  const firstBegun = async (): Promise<void> => { await pollUntil('the first batch', async () => begun.length > 0 ? true : undefined, { everyMs: 1, timeoutMs: 5000 }) }
  return { store: gated, begun, open, firstBegun }
}

t.test('beside a running batch, a few ready items wait for more and go as one batch', async (t: Test) => {
  const ids = await sections([5, 5, 5])
  const { store: gated, begun, open, firstBegun } = gatedFirst(store)
  t.teardown(open)
  // batchMax 8: a batch begins beside the running one with 2 items ready; a clock that stands still: never on time
  const { svc } = service({ store: gated, batchMax: 8, batchConcurrency: 2, clock: () => 0 })
  const first = svc.book(SERVICE, { ...ids[0], qty: 1, userId: 'beside0' })
  await firstBegun()
  const second = svc.book(SERVICE, { ...ids[1], qty: 1, userId: 'beside1' })
  // time for the batcher to begin a second batch, were it to
  await sleep(200)
  t.same(begun, [[ids[0].sectionId]], 'one item ready beside the running batch: it waits')
  const third = svc.book(SERVICE, { ...ids[2], qty: 1, userId: 'beside2' })
  t.not(await within(Promise.all([second, third]), 5000), 'waiting', 'decided while the first batch still ran')
  t.same(begun, [[ids[0].sectionId], [ids[1].sectionId, ids[2].sectionId]], 'with two ready, they went together')
  open()
  t.equal((await first).booking.status, 'confirmed')
  t.same(await remainingOf(ids), [4, 4, 4])
})

t.test('beside a running batch, a lone item waits a little, not for that batch to end', async (t: Test) => {
  const ids = await sections([5, 5])
  const { store: gated, begun, open, firstBegun } = gatedFirst(store)
  t.teardown(open)
  const { svc } = service({ store: gated, batchMax: 8, batchConcurrency: 2 })
  const first = svc.book(SERVICE, { ...ids[0], qty: 1, userId: 'lone0' })
  await firstBegun()
  t.not(await within(svc.book(SERVICE, { ...ids[1], qty: 1, userId: 'lone1' }), 5000), 'waiting', 'decided while the first batch still ran')
  t.same(begun, [[ids[0].sectionId], [ids[1].sectionId]])
  open()
  await first
  t.same(await remainingOf(ids), [4, 4])
})

// a store that is not in-process asks first; an in-process one answers first (it would decide the next batch before they go)
for (const { kind, order: expected } of [
  { kind: 'postgres' as const, order: ['lock 0', 'lock 1', 'answered 0', 'answered 1'] },
  { kind: 'embedded' as const, order: ['lock 0', 'answered 0', 'lock 1', 'answered 1'] }
]) {
  t.test(`a turn whose sections have nothing left, ${kind}: the next batch's lock and its answers, in order`, async (t: Test) => {
    const ids = await sections([5, 5])
    const keys = ids.map(s => sectionLockKey(s.eventId, s.sectionId))
    const inner = localLocker()
    const order: string[] = []
    const locker: Locker = { ...inner, lockSome: async (asked, waitMs) => { order.push(`lock ${keys.indexOf(asked[0])}`); return await inner.lockSome(asked, waitMs) } }
    const { store: gated, open, firstBegun } = gatedFirst(store)
    t.teardown(open)
    const { svc } = service({ store: { ...gated, kind }, locker, batchConcurrency: 1 })
    const first = svc.book(SERVICE, { ...ids[0], qty: 1, userId: `${kind}0` }).then(() => { order.push('answered 0') })
    await firstBegun()
    const second = svc.book(SERVICE, { ...ids[1], qty: 1, userId: `${kind}1` }).then(() => { order.push('answered 1') })
    open()
    await Promise.all([first, second])
    t.same(order, expected)
    t.same(await remainingOf(ids), [4, 4])
  })
}

t.test('a section left out of a batch whose items all ran out of time is forgotten: drain resolves', async (t: Test) => {
  const ids = await sections([3, 3])
  const inner = localLocker()
  const second = sectionLockKey(ids[1].eventId, ids[1].sectionId)
  // the locks come late, and the second section's is held by another instance
  const locker: Locker = {
    ...inner,
    lockSome: async (keys, waitMs) => {
      await new Promise(resolve => setTimeout(resolve, 80))
      return await inner.lockSome(keys.filter(k => k !== second), waitMs)
    }
  }
  const { svc } = service({ store, locker, lockWaitMs: 50, batchConcurrency: 1 })
  const asked = [svc.book(SERVICE, { ...ids[0], qty: 1, userId: 'late0' }), svc.book(SERVICE, { ...ids[1], qty: 1, userId: 'late1' })]
  const settled = await Promise.allSettled(asked)
  t.ok(settled[1].status === 'rejected' && settled[1].reason instanceof BusyError, 'the left-out section\'s request is BUSY, not sold out')
  const drained = await within(svc.drain().then(() => 'drained'), 2000)
  t.equal(drained, 'drained', 'nothing is left queued')
})

t.test('a confirm or a cancel goes to the section its booking\'s id names; the batch decides who may act on it', async (t: Test) => {
  const ids = await section(10)
  const owner: Principal = { sub: 'u1', roles: ['customer'] }
  const stranger: Principal = { sub: 'u2', roles: ['customer'] }
  const organizer: Principal = { sub: 'organizer', roles: ['organizer'] }
  const made = service({ store }).svc
  const [a, b, c] = await Promise.all([1, 2, 3].map(async () => (await made.book(owner, { ...ids, qty: 1, hold: true })).booking))
  t.equal(a._id.slice(24), ids.sectionId, 'the id ends with its section\'s')

  // another instance: it has never seen the section, so its first confirm reads the booking
  const reads = { count: 0 }
  const other = service({ store: { ...store, getBooking: async (id, deadline) => { reads.count++; return await store.getBooking(id, deadline) } } }).svc
  await t.rejects(other.confirm(stranger, a._id, 'p'), NotFoundError, 'another customer is told it does not exist')
  t.equal(reads.count, 1, 'read once to learn the section\'s event')
  await t.rejects(other.confirm(organizer, a._id, 'p'), ForbiddenError, 'the event\'s organizer sees it but does not confirm it')
  await t.rejects(other.cancel(stranger, b._id), NotFoundError)
  t.match(await other.confirm(owner, a._id, 'p'), { status: 'confirmed', paymentRef: 'p' })
  t.match(await other.cancel(organizer, b._id), { status: 'cancelled' })
  t.equal(reads.count, 1, 'then no read: the batch read each booking under the lock')
  t.match((await store.getEvent(ids.eventId))!.sections[0], { remaining: 8, held: 1, sold: 1 }, 'only the owner\'s confirm and the organizer\'s cancel changed anything')

  // a booking made before ids named their section: found by a read, then confirmed as any
  const legacy = c._id.slice(0, 24)
  await db.query('UPDATE bookings SET id = $1 WHERE id = $2', [legacy, c._id])
  t.match(await other.confirm(owner, legacy, 'q'), { _id: legacy, status: 'confirmed', paymentRef: 'q' })
  t.equal(reads.count, 2)
  await t.rejects(other.confirm(owner, `${'0'.repeat(24)}${ids.sectionId}`), NotFoundError, 'an id naming a real section but no booking')
  await t.rejects(other.confirm(owner, `${a._id.slice(0, 24)}${'0'.repeat(24)}`), NotFoundError, 'a booking\'s own part with another section: not found')
})
