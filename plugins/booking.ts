import fp from 'fastify-plugin'
import { createBookingService, type BookingService } from '../lib/service/booking-service.ts'
import { createEventService, type EventService } from '../lib/service/event-service.ts'
import { createWaitlistService, type WaitlistService } from '../lib/service/waitlist-service.ts'
import { WORK_MS } from '../lib/support/deadline.ts'
import { createExpirySweeper, sweeperLockKey } from '../lib/service/expiry-sweeper.ts'
import { redisSeatReturns } from '../lib/cluster/seat-returns.ts'
import { databaseOf } from './config.ts'

declare module 'fastify' {
  interface FastifyInstance {
    booking: BookingService
    events: EventService
    waitlist: WaitlistService
  }
}

/** Longest a sold-out check or a seat-return count waits for the lock servers. */
const RETURNS_TIMEOUT_MS = 1000

/**
 * The booking and event services, built from the decorated store, locker and metrics, and
 * the expiry sweeper that runs beside it. With Redis, several instances may
 * run: seat returns are counted on the lock servers, so no sold-out memory
 * outlives seats given back on another instance.
 */
export default fp(async (fastify) => {
  const {
    BATCH_MAX, BATCH_CONCURRENCY, LOCK_WAIT_MS, SOLD_OUT_CACHE_MS, HOLD_TTL_MS, WAITLIST_OFFER_SECONDS, EXPIRY_SWEEP_MS, STORE, PG_POOL_SIZE, MONGODB_POOL_SIZE
  } = fastify.config
  /**
   * Never more batches than the store has connections (the embedded store runs one
   * transaction at a time); BATCH_MAX=1 is the seed's path: a transaction per request
   * on every connection.
   */
  const batchConcurrency = (): number => {
    const connections = STORE === 'postgres' ? PG_POOL_SIZE : STORE === 'mongo' ? MONGODB_POOL_SIZE : 1
    return BATCH_MAX === 1 ? connections : Math.min(BATCH_CONCURRENCY, connections)
  }
  const returns = fastify.redis.length === 0
    ? undefined
    : redisSeatReturns(fastify.redis, { timeoutMs: Math.min(LOCK_WAIT_MS, RETURNS_TIMEOUT_MS) })
  const booking = createBookingService({
    returns,
    onReturnUncounted: (err) => { fastify.log.warn({ err }, 'seats returned, but not counted on a majority of the lock servers: other instances may answer sold out for up to SOLD_OUT_CACHE_MS') },
    store: fastify.store,
    locker: fastify.locker,
    metrics: fastify.metrics,
    batchMax: BATCH_MAX,
    batchConcurrency: batchConcurrency(),
    lockWaitMs: LOCK_WAIT_MS,
    soldOutCacheMs: SOLD_OUT_CACHE_MS,
    holdTtlMs: HOLD_TTL_MS,
    waitlistOfferMs: WAITLIST_OFFER_SECONDS * 1000
  })
  const sweeper = createExpirySweeper({
    store: fastify.store,
    locker: fastify.locker,
    lockKey: sweeperLockKey(databaseOf(fastify.config)),
    metrics: fastify.metrics,
    sweep: booking.sweep,
    everyMs: EXPIRY_SWEEP_MS,
    waitMs: LOCK_WAIT_MS + WORK_MS,
    onError: (err) => { fastify.log.warn({ err }, 'expiry sweep failed; the next tick tries again') }
  })
  fastify.decorate('booking', booking)
  fastify.decorate('events', createEventService({ store: fastify.store, bookings: booking, answerWithinMs: LOCK_WAIT_MS + WORK_MS }))
  fastify.decorate('waitlist', createWaitlistService({ store: fastify.store, bookings: booking, answerWithinMs: LOCK_WAIT_MS + WORK_MS }))
  fastify.addHook('onReady', async () => { sweeper.start() })
  // runs before the store and Redis close (onClose hooks run in reverse order): stop sweeping, then decide what is queued
  fastify.addHook('onClose', async () => {
    await sweeper.stop()
    await booking.drain()
  })
}, { name: 'booking', dependencies: ['config', 'store', 'redis', 'metrics'] })
