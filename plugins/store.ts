import { resolve } from 'node:path'
import fp from 'fastify-plugin'
import { createMongoStore } from '../lib/store/mongo-store.ts'
import { pgClient } from '../lib/store/pg-client.ts'
import { pgliteClient } from '../lib/store/pglite-client.ts'
import { createSqlStore } from '../lib/store/sql-store.ts'
import type { Store, StoreObserver } from '../lib/store/store.ts'

declare module 'fastify' {
  interface FastifyInstance {
    store: Store
  }
}

/** Builds the selected store (config STORE), runs its idempotent migration, closes it on shutdown. */
export default fp(async (fastify) => {
  const { STORE, DATA_DIR } = fastify.config
  const { metrics } = fastify
  const observer: StoreObserver = {
    retry: (operation) => metrics.storeRetries.inc({ store: STORE, operation }),
    error: (kind) => metrics.storeErrors.inc({ kind })
  }
  let store: Store
  if (STORE === 'mongo') {
    store = createMongoStore(fastify.mongo!, { observer })
  } else if (STORE === 'postgres') {
    store = createSqlStore(pgClient(fastify.pg!), { kind: 'postgres', observer })
  } else {
    const dir = resolve(DATA_DIR)
    store = createSqlStore(await pgliteClient(dir), { kind: 'embedded', observer })
    fastify.log.info({ dataDir: dir }, 'embedded store: data kept under DATA_DIR')
  }
  fastify.addHook('onClose', async () => { await store.close() })
  await store.init()
  fastify.decorate('store', store)
  fastify.log.info({ store: store.kind }, 'store ready')
}, { name: 'store', dependencies: ['config', 'metrics', 'postgres', 'mongo'] })
