import type { Store, StoreObserver } from './store.ts'
import type { MongoClient } from 'mongodb'
export function createMongoStore (_client: MongoClient, _options: { observer?: StoreObserver }): Store {
  throw new Error('MongoDB store: not yet written')
}
