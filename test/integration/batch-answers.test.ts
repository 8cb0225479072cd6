/**
 * When a section's next batch goes to its store, relative to the answers of
 * the batch before (lib/batching/section-batcher.ts): a store in another process gets
 * the next batch first, and works on it while this process writes the answers;
 * an in-process store (it never yields) answers first, so that requests read
 * meanwhile join the next batch. Real stores: PostgreSQL and PGlite, each
 * store's batch calls recorded as they start.
 */
import t from 'tap'
import { Registry } from 'prom-client'
import type { Principal } from '../../lib/domain/principal.ts'
import { createBookingService } from '../../lib/service/booking-service.ts'
import { localLocker } from '../../lib/cluster/local-locker.ts'
import { createMetrics } from '../../lib/support/metrics.ts'
import type { Store } from '../../lib/store/store.ts'
import { STORE_ADAPTERS } from '../store/adapters.ts'
import { missing } from '../helpers/services.ts'

const SERVICE: Principal = { sub: 'box-office', roles: ['service'] }
const WAVE = 10

/** Two waves of bookings on one section, the second queued while the first one's batch is in the store: what happened, in order. */
async function twoWaves (inner: Store): Promise<string[]> {
  const event = await inner.createEvent({ name: 'Waves', sections: [{ name: 'A', price: 10, capacity: 100 }] }, 'organizer')
  const section = { eventId: event._id, sectionId: event.sections[0]._id }
  const order: string[] = []
  const secondWave: Array<Promise<unknown>> = []
  let batches = 0
  const store: Store = {
    ...inner,
    sectionsBatch: async (...args) => {
      batches++
      order.push(`batch ${batches}`)
      // the second wave arrives while the first one's batch is in the store
      if (batches === 1) secondWave.push(...book(2))
      return await inner.sectionsBatch(...args)
    }
  }
  const svc = createBookingService({
    store,
    locker: localLocker(),
    metrics: createMetrics(new Registry()),
    batchMax: 256,
    batchConcurrency: 1,
    lockWaitMs: 5000,
    soldOutCacheMs: 1000,
    holdTtlMs: 600_000
  })
  function book (wave: number): Array<Promise<unknown>> {
    return Array.from({ length: WAVE }, async (_, i) => {
      await svc.book(SERVICE, { ...section, qty: 1, userId: `w${wave}-${i}` })
      order.push(`answer ${wave}`)
    })
  }
  await Promise.all(book(1))
  await Promise.all(secondWave)
  await svc.drain()
  return order
}

const firstOf = (order: string[], what: string): number => order.indexOf(what)
const lastOf = (order: string[], what: string): number => order.lastIndexOf(what)

for (const adapter of STORE_ADAPTERS.filter(a => a.name !== 'mongo')) {
  t.test(`batches and answers on ${adapter.name}`, { skip: await missing(...adapter.needs) }, async t => {
    const { store, close } = await adapter.open(await adapter.location(t))
    t.teardown(close)
    const order = await twoWaves(store)
    t.equal(order.filter(o => o.startsWith('batch')).length, 2, `two batches: ${order.join(', ')}`)
    t.equal(order.filter(o => o === 'answer 1').length, WAVE, 'the first wave answered')
    t.equal(order.filter(o => o === 'answer 2').length, WAVE, 'the second wave answered')
    if (store.kind === 'embedded') {
      t.ok(lastOf(order, 'answer 1') < firstOf(order, 'batch 2'), `in-process: the first wave is answered before the next batch starts (${order.join(', ')})`)
    } else {
      t.ok(firstOf(order, 'batch 2') < firstOf(order, 'answer 1'), `another process: the next batch starts before the first wave is answered (${order.join(', ')})`)
    }
  })
}
