import fp from 'fastify-plugin'
import { StoreUnavailableError } from '../lib/domain/errors.ts'
import type { Store, StoreKind } from '../lib/store/store.ts'
import type { Config } from './config.ts'
import { unreachableError } from '../lib/support/unreachable.ts'
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

/** The database server of a store kind, for start-up's one line when it does not answer. */
const SERVERS: Partial<Record<StoreKind, { name: string, port: number, url: (config: Config) => string | undefined }>> = {
  postgres: { name: 'PostgreSQL', port: 5432, url: config => config.DATABASE_URL },
  mongo: { name: 'MongoDB', port: 27017, url: config => config.MONGODB_URI }
}

/** Registers the client plugin of the configured store (config STORE) and runs the store's idempotent migration. */
export default fp(async (fastify) => {
  const { metrics } = fastify
  const kind = fastify.config.STORE
  await fastify.register(CLIENT_PLUGINS[kind], {
    observer: {
      transaction: (operation, seconds) => metrics.storeTransaction.observe({ store: kind, operation }, seconds),
      retry: (operation) => metrics.storeRetries.inc({ store: kind, operation }),
      recorded: (types) => {
        // one inc per type and batch, not per booking
        const counts = new Map<string, number>()
        for (const type of types) counts.set(type, (counts.get(type) ?? 0) + 1)
        for (const [type, n] of counts) metrics.changesRecorded.inc({ type }, n)
      },
      error: (errorKind) => metrics.storeErrors.inc({ kind: errorKind })
    }
  })
  try {
    await fastify.store.init()
  } catch (err) {
    // start-up names the server that did not answer (the error's own words are meant for HTTP clients)
    const server = SERVERS[kind]
    const url = server?.url(fastify.config)
    if (err instanceof StoreUnavailableError && server !== undefined && url !== undefined) throw unreachableError(server.name, url, server.port, err.cause)
    throw err
  }
  fastify.log.info({ store: kind }, 'store ready')
}, { name: 'store', dependencies: ['config', 'metrics'] })
