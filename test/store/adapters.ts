/**
 * Every store adapter, as the contract suite runs it. `open` may be called
 * twice with the same `location` to check that data survives a reopen.
 * A store leaves its client to whoever opened it: here, `close`.
 */
import { PGlite } from '@electric-sql/pglite'
import { MongoClient } from 'mongodb'
import pg from 'pg'
import { createMongoStore } from '../../lib/store/mongo/mongo-store.ts'
import { GuardedClient, pgClient } from '../../lib/store/sql/pg-client.ts'
import { pgliteClient } from '../../lib/store/sql/pglite-client.ts'
import { createSqlStore } from '../../lib/store/sql/sql-store.ts'
import type { Store } from '../../lib/store/store.ts'
import type { TestContext } from '../helpers/context.ts'
import { createTestDatabase, mongoTestDatabase, pgliteDataDir } from '../helpers/databases.ts'
import type { Service } from '../helpers/services.ts'

export interface StoreAdapter {
  name: string
  needs: Service[]
  /** a fresh, empty place for a store (directory, database URL, ...) */
  location: (t: TestContext) => Promise<string>
  /** opens (and initialises) a store at `location`; the caller closes it */
  open: (location: string) => Promise<OpenedStore>
}

export interface OpenedStore {
  store: Store
  /** closes the store's client */
  close: () => Promise<void>
}

export const STORE_ADAPTERS: StoreAdapter[] = [
  {
    name: 'embedded (PGlite)',
    needs: [],
    location: async (t) => await pgliteDataDir(t),
    async open (dir) {
      const db = await PGlite.create(dir)
      const store = createSqlStore(pgliteClient(db), { kind: 'embedded' })
      await store.init()
      return { store, close: async () => { await db.close() } }
    }
  },
  {
    name: 'postgres',
    needs: ['postgres'],
    location: async (t) => await createTestDatabase(t),
    async open (url) {
      const pool = new pg.Pool({ connectionString: url, Client: GuardedClient, max: 10 })
      pool.on('error', () => {}) // idle clients killed by the database drop at teardown
      const store = createSqlStore(pgClient(pool), { kind: 'postgres' })
      await store.init()
      return { store, close: async () => { await pool.end() } }
    }
  },
  {
    name: 'mongo',
    needs: ['mongo'],
    location: async (t) => mongoTestDatabase(t),
    async open (uri) {
      const client = new MongoClient(uri, { writeConcern: { w: 'majority' } })
      await client.connect()
      const store = createMongoStore(client)
      await store.init().catch(async (err: unknown) => { await client.close(); throw err })
      return { store, close: async () => { await client.close() } }
    }
  }
]
