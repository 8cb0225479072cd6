import { mkdirSync } from 'node:fs'
import { resolve } from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import fp from 'fastify-plugin'
import { lockDataDir } from '../lib/store/sql/data-dir-lock.ts'
import { pgliteClient } from '../lib/store/sql/pglite-client.ts'
import { createSqlStore } from '../lib/store/sql/sql-store.ts'
import type { StoreObserver } from '../lib/store/store-errors.ts'

/**
 * The embedded store: PGlite keeping its files under DATA_DIR, in this process,
 * closed on shutdown. The directory is locked first: one process per directory.
 */
export default fp<{ observer: StoreObserver }>(async (fastify, { observer }) => {
  const dir = resolve(fastify.config.DATA_DIR)
  mkdirSync(dir, { recursive: true })
  const unlock = lockDataDir(dir)
  let db: PGlite
  try {
    db = await PGlite.create(dir)
  } catch (err) {
    unlock()
    throw err
  }
  fastify.addHook('onClose', async () => {
    if (!db.closed) await db.close()
    unlock()
  })
  fastify.decorate('store', createSqlStore(pgliteClient(db), { kind: 'embedded', observer }))
  fastify.log.info({ dataDir: dir }, 'embedded store: data kept under DATA_DIR')
}, { name: 'embedded', dependencies: ['config'] })
