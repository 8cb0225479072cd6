/**
 * Two instances (each its own booking service and RedLock clients) keep one
 * section busy at once through real Redis: each keeps the lock over
 * back-to-back batches for a turn, then lets the other have it, so the turns
 * alternate and neither waits out its deadline while the other sells. (With
 * no pause after a turn, one instance took six turns in a row here.)
 */
import t from 'tap'
import { Redis } from 'ioredis'
import { Registry } from 'prom-client'
import { PGlite } from '@electric-sql/pglite'
import { createBookingService } from '../../lib/service/booking-service.ts'
import type { Principal } from '../../lib/domain/principal.ts'
import type { Locker } from '../../lib/cluster/locker.ts'
import { redlockLocker } from '../../lib/cluster/redlock-locker.ts'
import { createMetrics } from '../../lib/support/metrics.ts'
import { pgliteClient } from '../../lib/store/sql/pglite-client.ts'
import { createSqlStore } from '../../lib/store/sql/sql-store.ts'
import { pgliteDataDir } from '../helpers/databases.ts'
import { missing, REDIS_URL } from '../helpers/services.ts'

const SERVICE: Principal = { sub: 'box-office', roles: ['service'] }
/** requests each client of each instance sends, one after the other */
const ROUNDS = 40
const CLIENTS = 20
/** far longer than a few of the other instance's turns (50 ms each), even on a loaded machine */
const LOCK_WAIT_MS = 2000
/** most turns in a row one instance may have while the other has work waiting (turns alternate) */
const MOST_TURNS_IN_A_ROW = 3

t.test('two instances on one busy section both sell, neither answers BUSY', { skip: await missing('redis') }, async t => {
  const db = await PGlite.create(await pgliteDataDir(t))
  t.teardown(async () => await db.close())
  const store = createSqlStore(pgliteClient(db), { kind: 'embedded' })
  await store.init()
  const capacity = 2 * CLIENTS * ROUNDS
  const event = await store.createEvent({ name: 'Turns', sections: [{ name: 'A', price: 10, capacity }] }, 'organizer')
  const ids = { eventId: event._id, sectionId: event.sections[0]._id }

  // which instance had the section's lock, turn after turn, while both had work
  const turns: number[] = []
  const working = [true, true]
  const instance = async (n: number) => {
    const client = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 })
    t.teardown(() => client.disconnect())
    await client.connect()
    const locker = redlockLocker([client], { ttlMs: 5000 })
    const lockSome: Locker['lockSome'] = async (keys, waitMs) => {
      const held = await locker.lockSome(keys, waitMs)
      if (working[0] && working[1]) turns.push(n)
      return held
    }
    return createBookingService({
      store, locker: { ...locker, lockSome }, metrics: createMetrics(new Registry()),
      batchConcurrency: 4, batchMax: 8, lockWaitMs: LOCK_WAIT_MS, soldOutCacheMs: 0, holdTtlMs: 600_000
    })
  }
  const instances = [await instance(0), await instance(1)]
  const sold = [0, 0]
  const refused: string[] = []
  await Promise.all(instances.map(async (svc, n) => {
    await Promise.all(Array.from({ length: CLIENTS }, async (_, c) => {
      for (let i = 0; i < ROUNDS; i++) {
        await svc.book(SERVICE, { ...ids, qty: 1, userId: `i${n}c${c}` })
          .then(() => { sold[n]++ }, (err: Error) => { refused.push(`${n}: ${err.message}`) })
      }
    }))
    working[n] = false
  }))
  const runs: number[] = []
  turns.forEach((n, i) => { if (i > 0 && turns[i - 1] === n) runs[runs.length - 1]++; else runs.push(1) })
  t.ok(turns.includes(0) && turns.includes(1), 'both instances had turns while both had work')
  t.ok(Math.max(...runs) <= MOST_TURNS_IN_A_ROW, `the lock went from one instance to the other (turns in a row: ${runs.join(' ')})`)
  t.same(refused, [], 'no request of either instance refused (BUSY would mean one starved the other)')
  t.same(sold, [CLIENTS * ROUNDS, CLIENTS * ROUNDS], 'every request of both instances sold a seat')
  const after = (await store.getEvent(ids.eventId))!.sections[0]
  t.equal(after.remaining, 0, 'remaining is capacity minus the seats sold')
  t.equal((await store.listBookings({ sectionId: ids.sectionId, page: 1, limit: 1 })).total, capacity, 'one booking per seat')
})
