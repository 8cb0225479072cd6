/** The store set-ups every store-backed suite runs on, each giving a fresh, empty store. */
import type { TestContext } from './context.ts'
import { createTestDatabase, mongoTestDatabase, pgliteDataDir } from './databases.ts'
import { REDIS_URL, type Service } from './services.ts'

export interface StoreSetup {
  name: string
  needs: Service[]
  /** environment for a fresh, empty store of this kind */
  env: (t: TestContext) => Promise<Record<string, string>>
}

export const STORE_SETUPS: StoreSetup[] = [
  {
    name: 'embedded',
    needs: [],
    env: async (t) => ({ DATA_DIR: await pgliteDataDir(t) })
  },
  {
    name: 'postgres+redis',
    needs: ['postgres', 'redis'],
    env: async (t) => ({ STORE: 'postgres', DATABASE_URL: await createTestDatabase(t), REDIS_NODES: REDIS_URL })
  },
  {
    name: 'mongo+redis',
    needs: ['mongo', 'redis'],
    env: async (t) => ({ STORE: 'mongo', MONGODB_URI: mongoTestDatabase(t), REDIS_NODES: REDIS_URL })
  }
]

/** A set-up by name (throws on a typo). */
export function storeSetup (name: string): StoreSetup {
  const setup = STORE_SETUPS.find(s => s.name === name)
  if (setup === undefined) throw new Error(`no store set-up ${name}`)
  return setup
}
