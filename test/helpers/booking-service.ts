/**
 * The booking service as the unit tests build it: on a real embedded store
 * (PGlite in a temp directory holding a fresh cluster, closed at teardown) and
 * the in-process lock.
 */
import { PGlite } from '@electric-sql/pglite'
import { Registry } from 'prom-client'
import { localLocker } from '../../lib/cluster/local-locker.ts'
import type { Principal } from '../../lib/domain/principal.ts'
import { createBookingService, type BookingServiceOptions } from '../../lib/service/booking-service.ts'
import { pgliteClient } from '../../lib/store/sql/pglite-client.ts'
import { createSqlStore } from '../../lib/store/sql/sql-store.ts'
import type { Store } from '../../lib/store/store.ts'
import { createMetrics } from '../../lib/support/metrics.ts'
import type { TestContext } from './context.ts'
import { pgliteDataDir } from './databases.ts'

/** A box office booking on behalf of the users it names. */
export const SERVICE: Principal = { sub: 'box-office', roles: ['service'] }

/** A fresh embedded store, migrated, and its database (closed at the test's teardown). */
export async function embeddedStore (t: TestContext): Promise<{ store: Store, db: PGlite }> {
  const db = await PGlite.create(await pgliteDataDir(t))
  t.teardown(async () => await db.close())
  const store = createSqlStore(pgliteClient(db), { kind: 'embedded' })
  await store.init()
  return { store, db }
}

/** A booking service on `store`, with the options a test overrides (a registry of its own for its metrics). */
export function bookingService (overrides: Partial<BookingServiceOptions> & { store: Store }) {
  const metrics = overrides.metrics ?? createMetrics(new Registry())
  const locker = overrides.locker ?? localLocker()
  const svc = createBookingService({ batchMax: 256, batchConcurrency: 4, lockWaitMs: 5000, soldOutCacheMs: 60_000, holdTtlMs: 600_000, ...overrides, locker, metrics })
  return { svc, metrics, locker }
}

/** The real store, with its batches counted. */
export function counting (inner: Store) {
  const calls = { bookBatch: 0 }
  const wrapped: Store = { ...inner, sectionsBatch: async (...args) => { calls.bookBatch++; return await inner.sectionsBatch(...args) } }
  return { store: wrapped, calls }
}
