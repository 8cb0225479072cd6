import { mkdirSync } from 'node:fs'
import { PGlite } from '@electric-sql/pglite'
import type { SqlClient } from './sql-client.ts'

/**
 * The embedded store's database: PGlite (PostgreSQL compiled to WASM) keeping
 * its files under `dataDir`, in this process. One process may open a data
 * directory at a time.
 */
export async function pgliteClient (dataDir: string): Promise<SqlClient> {
  mkdirSync(dataDir, { recursive: true })
  const db = await PGlite.create(dataDir)
  return {
    query: async (text, params) => await db.query(text, params),
    transaction: async (fn) => await db.transaction(async (tx) => await fn({ query: async (text, params) => await tx.query(text, params) })),
    close: async () => { if (!db.closed) await db.close() }
  }
}
