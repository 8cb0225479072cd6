/**
 * The expiry sweeper: with no traffic at all, holds past their expiresAt
 * still expire and give their seats back within `everyMs`. Every instance
 * ticks; the one that gets its database's sweeper lock (RedLock across instances)
 * sweeps while the others skip that tick, so one instance sweeps at a time and
 * a dead one is replaced at the next tick after its lock's TTL. Each due
 * section is swept by a batch of its own, under the section's lock, as any
 * other write; a section's next batch also expires its due holds by itself.
 */
import { deploymentKey } from '../support/deployment-key.ts'
import { LockUnavailableError, type Locker } from '../cluster/locker.ts'
import type { Metrics } from '../support/metrics.ts'
import type { SectionRef } from '../domain/section-ops.ts'
import type { Store } from '../store/store.ts'
import { createTicker } from '../support/ticker.ts'

/** Sections swept per tick at most; more wait for the next tick. */
const SECTIONS_PER_TICK = 100

/** One sweeper lock per database: deployments sharing a Redis never stop each other's sweeps. */
export function sweeperLockKey (database: string): string {
  return `expiry-sweeper:${deploymentKey(database)}`
}

export interface ExpirySweeperOptions {
  store: Pick<Store, 'dueSections'>
  locker: Locker
  /** the lock taken by whoever sweeps this database (sweeperLockKey) */
  lockKey: string
  metrics: Pick<Metrics, 'sweeps'>
  /** expires the due holds of one section (the booking service's batch) */
  sweep: (section: SectionRef) => Promise<void>
  /** holds come back no later than this after their expiresAt */
  everyMs: number
  /** longest a tick waits for the store's list of due sections (a store that stalls costs a tick, not the sweeper) */
  waitMs: number
  /** a failed sweep (store down, ...): logged, the next tick tries again */
  onError: (err: unknown) => void
}

export function createExpirySweeper (options: ExpirySweeperOptions) {
  const { store, locker, lockKey, metrics, sweep, onError } = options
  // two ticks per period: a hold due just after a tick is swept by the next one, well within the period
  const tickMs = Math.max(25, Math.floor(options.everyMs / 2))

  async function sweepDue (): Promise<void> {
    const due = await store.dueSections(SECTIONS_PER_TICK, Date.now() + options.waitMs)
    await Promise.all(due.map(async section => { await sweep(section) }))
    metrics.sweeps.inc()
  }

  async function tick (): Promise<void> {
    try {
      // no wait: if another instance holds it, this one skips the tick
      await locker.withLock(lockKey, 0, sweepDue)
    } catch (err) {
      if (!(err instanceof LockUnavailableError && err.reason === 'timeout')) onError(err)
    }
  }

  // stop() resolves once a sweep under way has ended
  return createTicker(tickMs, tick)
}
