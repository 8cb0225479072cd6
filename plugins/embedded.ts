import { mkdirSync } from 'node:fs'
import { resolve } from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import fp from 'fastify-plugin'
import { pgliteClient } from '../lib/store/pglite-client.ts'
import { createSqlStore } from '../lib/store/sql-store.ts'
import type { StoreObserver } from '../lib/store/store-errors.ts'

/** The embedded store: PGlite keeping its files under DATA_DIR, in this process, closed on shutdown. */
export default fp<{ observer: StoreObserver }>(async (fastify, { observer }) => {
  const dir = resolve(fastify.config.DATA_DIR)
  mkdirSync(dir, { recursive: true })
  const db = await PGlite.create(dir)
  fastify.addHook('onClose', async () => { if (!db.closed) await db.close() })
  fastify.decorate('store', createSqlStore(pgliteClient(db), { kind: 'embedded', observer }))
  fastify.log.info({ dataDir: dir }, 'embedded store: data kept under DATA_DIR')
}, { name: 'embedded', dependencies: ['config'] })
