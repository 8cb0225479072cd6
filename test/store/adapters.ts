/**
 * Every store adapter, as the contract suite runs it. `open` may be called
 * twice with the same `location` to check that data survives a reopen.
 */
import pg from 'pg'
import { pgClient } from '../../lib/store/pg-client.ts'
import { pgliteClient } from '../../lib/store/pglite-client.ts'
import { createSqlStore } from '../../lib/store/sql-store.ts'
import type { Store } from '../../lib/store/store.ts'
import { tempDataDir } from '../helpers/build-app.ts'
import { createTestDatabase, type Service } from '../helpers/services.ts'

interface TestContext { teardown: (fn: () => unknown) => void }

export interface StoreAdapter {
  name: string
  needs: Service[]
  /** a fresh, empty place for a store (directory, database URL, ...) */
  location: (t: TestContext) => Promise<string>
  /** opens (and initialises) a store at `location`; the caller closes it */
  open: (location: string) => Promise<Store>
}

export const STORE_ADAPTERS: StoreAdapter[] = [
  {
    name: 'embedded (PGlite)',
    needs: [],
    location: async (t) => tempDataDir(t),
    async open (dir) {
      const store = createSqlStore(await pgliteClient(dir), { kind: 'embedded' })
      await store.init()
      return store
    }
  },
  {
    name: 'postgres',
    needs: ['postgres'],
    location: async (t) => await createTestDatabase(t),
    async open (url) {
      const pool = new pg.Pool({ connectionString: url, max: 10 })
      pool.on('error', () => {}) // idle clients killed by the database drop at teardown
      const store = createSqlStore(pgClient(pool), { kind: 'postgres' })
      await store.init()
      // pgClient leaves the pool to its owner: here, the store's closer
      return { ...store, close: async () => { await store.close(); await pool.end() } }
    }
  }
]
