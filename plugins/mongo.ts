import fp from 'fastify-plugin'
import { MongoClient } from 'mongodb'
import { createMongoStore } from '../lib/store/mongo/mongo-store.ts'
import { unreachableError } from '../lib/support/unreachable.ts'
import type { StoreObserver } from '../lib/store/store-errors.ts'

/** The MongoDB store: one MongoClient on MONGODB_URI, connected on start, closed on shutdown. */
export default fp<{ observer: StoreObserver }>(async (fastify, { observer }) => {
  const { MONGODB_URI, MONGODB_POOL_SIZE, MONGODB_TIMEOUT_MS } = fastify.config
  if (MONGODB_URI === undefined) throw new Error('STORE=mongo needs MONGODB_URI (e.g. mongodb://localhost:27017/ticketing?replicaSet=rs0)')
  const client = new MongoClient(MONGODB_URI, {
    maxPoolSize: MONGODB_POOL_SIZE,
    serverSelectionTimeoutMS: MONGODB_TIMEOUT_MS,
    connectTimeoutMS: MONGODB_TIMEOUT_MS,
    // bookings must survive a primary failover: acknowledged by a majority
    writeConcern: { w: 'majority' },
    retryWrites: true
  })
  try {
    await client.connect()
  } catch (err) {
    throw unreachableError('MongoDB', MONGODB_URI, 27017, err)
  }
  fastify.addHook('onClose', async () => { await client.close() })
  fastify.decorate('store', createMongoStore(client, { observer }))
}, { name: 'mongo', dependencies: ['config'] })
