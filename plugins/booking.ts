import fp from 'fastify-plugin'
import { createBookingService, type BookingService } from '../lib/booking-service.ts'

declare module 'fastify' {
  interface FastifyInstance {
    booking: BookingService
  }
}

/** The booking service, built from the decorated store, locker and metrics. */
export default fp(async (fastify) => {
  const { BATCH_MAX, LOCK_WAIT_MS, SOLD_OUT_CACHE_MS } = fastify.config
  const booking = createBookingService({
    store: fastify.store,
    locker: fastify.locker,
    metrics: fastify.metrics,
    batchMax: BATCH_MAX,
    lockWaitMs: LOCK_WAIT_MS,
    soldOutCacheMs: SOLD_OUT_CACHE_MS
  })
  fastify.decorate('booking', booking)
  // runs before the store and Redis close (onClose hooks run in reverse order): decide what is queued first
  fastify.addHook('onClose', async () => { await booking.drain() })
}, { name: 'booking', dependencies: ['config', 'store', 'redis', 'metrics'] })
