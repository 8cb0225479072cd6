/**
 * The section batcher's promises when something goes wrong around a batch,
 * on a real embedded store: every request is answered, whatever throws or
 * never answers (the lock servers' client, the batch's own bookkeeping), by
 * its deadline plus a second; and a booking queued behind a return of seats
 * is decided after it, first come first served.
 */
import t from 'tap'
import { Registry } from 'prom-client'
import { BusyError, SoldOutError, StoreUnavailableError } from '../../lib/domain/errors.ts'
import { localLocker } from '../../lib/cluster/local-locker.ts'
import type { Locker } from '../../lib/cluster/locker.ts'
import { createMetrics, type Metrics } from '../../lib/support/metrics.ts'
import type { Store } from '../../lib/store/store.ts'
import { SERVICE, bookingService, embeddedStore } from '../helpers/booking-service.ts'
import { pollUntil } from '../helpers/poll.ts'

let store: Store
t.before(async () => { ({ store } = await embeddedStore(t)) })

const service = bookingService

async function section (capacity: number) {
  const event = await store.createEvent({ name: 'Batcher', sections: [{ name: 'S', price: 10, capacity }] }, 'organizer')
  return { eventId: event._id, sectionId: event.sections[0]._id }
}

/** How the promise settled within `ms`: its value, its error, or 'waiting' (a failed test ends rather than hangs). */
async function settled<T> (promise: Promise<T>, ms: number): Promise<{ value: T } | { error: unknown } | 'waiting'> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([
      promise.then(value => ({ value }), (error: unknown) => ({ error })),
      new Promise<'waiting'>(resolve => { timer = setTimeout(() => resolve('waiting'), ms) })
    ])
  } finally {
    clearTimeout(timer)
  }
}

const errorOf = (outcome: Awaited<ReturnType<typeof settled>>): unknown => typeof outcome === 'object' && 'error' in outcome ? outcome.error : outcome

async function queued (metrics: Metrics): Promise<number> {
  return (await metrics.queueDepth.get()).values[0]?.value ?? 0
}

/** The store, with its next batch held until `open` is called (and `entered` resolved once that batch has begun). */
function gated (inner: Store) {
  let open!: () => void
  let entered!: () => void
  const gate = new Promise<void>(resolve => { open = resolve })
  const begun = new Promise<void>(resolve => { entered = resolve })
  let first = true
  const wrapped: Store = {
    ...inner,
    sectionsBatch: async (...args) => {
      if (first) {
        first = false
        entered()
        await gate
      }
      return await inner.sectionsBatch(...args)
    }
  }
  return { store: wrapped, open, begun }
}

t.test('a lock client that throws an unexpected error: the request is answered BUSY, not left waiting', async t => {
  const ids = await section(5)
  const broken: Locker = { ...localLocker(), lockSome: async () => { throw new Error('the lock client broke') } }
  const { svc } = service({ store, locker: broken })
  const outcome = await settled(svc.book(SERVICE, { ...ids, qty: 1, userId: 'u1' }), 5000)
  t.type(errorOf(outcome), BusyError, 'answered BUSY (503): no lock, nothing done')
  t.equal((await store.getEvent(ids.eventId))?.sections[0].remaining, 5, 'nothing booked')
})

t.test('a lock client that never answers: the request is answered by its deadline plus a second', async t => {
  const ids = await section(5)
  const stalled: Locker = { ...localLocker(), lockSome: async () => await new Promise(() => {}) }
  const { svc } = service({ store, locker: stalled, lockWaitMs: 200 })
  const outcome = await settled(svc.book(SERVICE, { ...ids, qty: 1, userId: 'u1' }), 5000)
  t.type(errorOf(outcome), StoreUnavailableError, 'answered 503 with its outcome unknown: the batch was under way')
})

t.test('a batch whose bookkeeping throws after the store answered: every request taken is answered', async t => {
  const ids = await section(5)
  const metrics = createMetrics(new Registry())
  let broken = true
  const observe = metrics.batchSize.observe.bind(metrics.batchSize) as (value: number) => void
  metrics.batchSize.observe = ((value: number) => {
    if (broken) throw new Error('bookkeeping broke')
    observe(value)
  }) as typeof metrics.batchSize.observe
  const { svc } = service({ store, metrics })
  const outcomes = await Promise.all([1, 2, 3].map(async i => await settled(svc.book(SERVICE, { ...ids, qty: 1, userId: `u${i}` }), 5000)))
  t.same(outcomes.map(o => o === 'waiting' ? 'waiting' : 'answered'), ['answered', 'answered', 'answered'], 'none left waiting')
  broken = false
  t.same(await settled(svc.book(SERVICE, { ...ids, qty: 1, userId: 'after' }), 5000).then(o => typeof o === 'object' && 'value' in o), true, 'the section goes on')
})

/**
 * A section of one seat, taken by another instance's booking; a service whose
 * first batch (a booking, `early`) waits at a gate until `open`, and which
 * knows the section's event (a cancellation goes straight to its queue).
 */
async function soldOutBehindGate () {
  const ids = await section(1)
  const { svc: other } = service({ store })
  const taken = await other.book(SERVICE, { ...ids, qty: 1, userId: 'holder' })
  const { store: slow, open, begun } = gated(store)
  const { svc, metrics } = service({ store: slow })
  svc.learnSections(ids.eventId, [ids.sectionId])
  const early = settled(svc.book(SERVICE, { ...ids, qty: 1, userId: 'early' }), 10_000)
  await begun
  return { ids, taken, svc, metrics, open, early }
}

t.test('bookings queued behind a cancellation are decided after it: the seat it gives back goes to the first of them', async t => {
  const { ids, taken, svc, metrics, open, early } = await soldOutBehindGate()
  const cancel = settled(svc.cancel(SERVICE, taken.booking._id), 10_000)
  await pollUntil('the cancellation queued', async () => await queued(metrics) === 1 ? true : undefined)
  const next = settled(svc.book(SERVICE, { ...ids, qty: 1, userId: 'next' }), 10_000)
  const last = settled(svc.book(SERVICE, { ...ids, qty: 1, userId: 'last' }), 10_000)
  await pollUntil('both bookings queued', async () => await queued(metrics) === 3 ? true : undefined)
  open()
  t.type(errorOf(await early), SoldOutError, 'decided before the cancellation: sold out')
  t.match(await cancel, { value: { status: 'cancelled' } })
  t.match(await next, { value: { booking: { userId: 'next', status: 'confirmed' } } }, 'the first booking behind the cancellation gets its seat')
  t.type(errorOf(await last), SoldOutError)
})

t.test('a section remembered sold out: a booking arriving after a cancellation was asked for waits for it', async t => {
  // the first batch (held at the gate) finds it sold out: remembered
  const { ids, taken, svc, metrics, open, early } = await soldOutBehindGate()
  open()
  t.type(errorOf(await early), SoldOutError)
  t.type(errorOf(await settled(svc.book(SERVICE, { ...ids, qty: 1, userId: 'storm' }), 10_000)), SoldOutError, 'answered from memory')
  const cancel = svc.cancel(SERVICE, taken.booking._id)
  const next = settled(svc.book(SERVICE, { ...ids, qty: 1, userId: 'next' }), 10_000)
  t.match(await cancel, { status: 'cancelled' })
  t.match(await next, { value: { booking: { userId: 'next', status: 'confirmed' } } }, 'not answered from memory while the cancellation was queued')
  t.equal(await queued(metrics), 0)
})
