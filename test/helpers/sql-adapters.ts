/**
 * The two SQL stores' databases for tests that speak SQL to them: a fresh
 * PGlite data directory (embedded) and a fresh PostgreSQL database, each with
 * the client the store runs on.
 */
import { PGlite } from '@electric-sql/pglite'
import pg from 'pg'
import type { Test } from 'tap'
import { GuardedClient, pgClient } from '../../lib/store/sql/pg-client.ts'
import { pgliteClient } from '../../lib/store/sql/pglite-client.ts'
import type { SqlClient } from '../../lib/store/sql/client.ts'
import type { StoreKind } from '../../lib/store/store.ts'
import { createTestDatabase, pgliteDataDir } from './databases.ts'
import { missing } from './services.ts'

export interface SqlAdapter {
  name: string
  skip?: string
  /** a fresh database: its client, and a way to close it */
  open: (t: Test) => Promise<{ client: SqlClient, kind: StoreKind, close: () => Promise<void> }>
}

export const SQL_ADAPTERS: SqlAdapter[] = [
  {
    name: 'embedded (PGlite)',
    async open (t) {
      const db = await PGlite.create(await pgliteDataDir(t))
      return { client: pgliteClient(db), kind: 'embedded', close: async () => { await db.close() } }
    }
  },
  {
    name: 'postgres',
    skip: await missing('postgres'),
    async open (t) {
      const pool = new pg.Pool({ connectionString: await createTestDatabase(t), Client: GuardedClient, max: 4 })
      pool.on('error', () => {})
      return { client: pgClient(pool), kind: 'postgres', close: async () => { await pool.end() } }
    }
  }
]
