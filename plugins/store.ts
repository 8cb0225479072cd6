import fp from 'fastify-plugin'
import type { Store, StoreKind } from '../lib/store/store.ts'
import embedded from './embedded.ts'
import mongo from './mongo.ts'
import postgres from './postgres.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** the selected store, decorated by its client plugin */
    store: Store
  }
}

/**
 * One client plugin per store kind: a new store is one config value, one client
 * plugin, one adapter. A client plugin is given the store observer, opens its
 * client, decorates `store` on it and closes the client on shutdown.
 */
const CLIENT_PLUGINS: Record<StoreKind, typeof embedded> = { embedded, postgres, mongo }

/** Registers the client plugin of the configured store (config STORE) and runs the store's idempotent migration. */
export default fp(async (fastify) => {
  const { metrics } = fastify
  const kind = fastify.config.STORE
  await fastify.register(CLIENT_PLUGINS[kind], {
    observer: {
      transaction: (operation, seconds) => metrics.storeTransaction.observe({ store: kind, operation }, seconds),
      retry: (operation) => metrics.storeRetries.inc({ store: kind, operation }),
      error: (errorKind) => metrics.storeErrors.inc({ kind: errorKind })
    }
  })
  await fastify.store.init()
  fastify.log.info({ store: kind }, 'store ready')
}, { name: 'store', dependencies: ['config', 'metrics'] })
