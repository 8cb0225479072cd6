/**
 * A batch whose outcome is unknown: the store committed it, then its answer
 * was lost (the commit's reply never came, the request's deadline passed). A
 * cancellation in such a batch did give its seat back, so no instance may go
 * on answering the section sold out from memory: the instance that ran it
 * forgets what it knew, and counts a return on the lock servers as if seats
 * had come back, which ends every other instance's memory. Two booking
 * services (two instances) on one embedded database and the real Redis.
 */
import t from 'tap'
import { Redis } from 'ioredis'
import { Registry } from 'prom-client'
import { PGlite } from '@electric-sql/pglite'
import { createBookingService } from '../../lib/service/booking-service.ts'
import type { Principal } from '../../lib/domain/principal.ts'
import { SoldOutError, StoreUnavailableError } from '../../lib/domain/errors.ts'
import { localLocker } from '../../lib/cluster/local-locker.ts'
import { redisSeatReturns } from '../../lib/cluster/seat-returns.ts'
import { createMetrics } from '../../lib/support/metrics.ts'
import { pgliteClient } from '../../lib/store/sql/pglite-client.ts'
import { createSqlStore } from '../../lib/store/sql/sql-store.ts'
import type { Store } from '../../lib/store/store.ts'
import { tempDataDir } from '../helpers/databases.ts'
import { missing, REDIS_URL } from '../helpers/services.ts'

const SERVICE: Principal = { sub: 'box-office', roles: ['service'] }

const skip = await missing('redis')
if (skip !== undefined) console.log(`# SKIPPED unknown outcome across instances: ${skip}`)

t.test('a return of seats whose batch answered with an error still ends the sold-out memories', { skip }, async t => {
  const db = await PGlite.create(tempDataDir(t))
  t.teardown(async () => await db.close())
  const redis = new Redis(REDIS_URL.split(',')[0], { lazyConnect: false })
  t.teardown(() => { redis.disconnect() })
  // one client: PGlite is one connection (its prepared statements are the client's)
  const client = pgliteClient(db)
  const store = createSqlStore(client, { kind: 'embedded' })
  await store.init()

  /** An instance: its own store over the shared database (its own memories), the shared lock servers' counters. */
  function instance (storeOf: Store) {
    return createBookingService({
      store: storeOf,
      locker: localLocker(),
      metrics: createMetrics(new Registry()),
      returns: redisSeatReturns([redis], { timeoutMs: 1000 }),
      batchMax: 256,
      batchConcurrency: 2,
      lockWaitMs: 5000,
      soldOutCacheMs: 60_000,
      holdTtlMs: 600_000
    })
  }
  /** A store that commits every batch, then, while `lost` is set, answers as if the commit's reply never came. */
  let lost = false
  const inner = createSqlStore(client, { kind: 'embedded' })
  const losing: Store = {
    ...inner,
    sectionsBatch: async (groups, deadline) => {
      const result = await inner.sectionsBatch(groups, deadline)
      if (lost) throw new StoreUnavailableError(new Error('the commit\'s answer was lost'))
      return result
    }
  }
  const a = instance(losing)
  const b = instance(createSqlStore(client, { kind: 'embedded' }))

  for (const where of ['on another instance', 'on the instance whose batch failed'] as const) {
    const event = await store.createEvent({ name: 'Unknown', sections: [{ name: 'S', price: 10, capacity: 1 }] }, 'organizer')
    const ids = { eventId: event._id, sectionId: event.sections[0]._id }
    const remembering = where === 'on another instance' ? b : a
    const taken = await remembering.book(SERVICE, { ...ids, qty: 1, userId: 'holder' })
    await t.rejects(remembering.book(SERVICE, { ...ids, qty: 1, userId: 'late' }), SoldOutError, `${where}: sold out, remembered`)
    await t.rejects(remembering.book(SERVICE, { ...ids, qty: 1, userId: 'storm' }), SoldOutError, `${where}: answered from memory`)

    lost = true
    await t.rejects(a.cancel(SERVICE, taken.booking._id), StoreUnavailableError, 'the cancellation is answered 503: its outcome unknown to A')
    lost = false
    t.equal((await store.getEvent(ids.eventId))?.sections[0].remaining, 1, 'yet it committed: the seat is back')

    const next = await remembering.book(SERVICE, { ...ids, qty: 1, userId: 'next' })
    t.equal(next.booking.status, 'confirmed', `${where}: the seat that came back is sold, not refused from memory`)
  }
})
