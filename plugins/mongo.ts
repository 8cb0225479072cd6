import fp from 'fastify-plugin'
import { MongoClient } from 'mongodb'

declare module 'fastify' {
  interface FastifyInstance {
    /** the MongoDB client, when the MongoDB store is selected */
    mongo?: MongoClient
  }
}

/** One MongoClient for the MongoDB store: connected on start, closed on shutdown. */
export default fp(async (fastify) => {
  const { STORE, MONGODB_URI, MONGODB_POOL_SIZE, MONGODB_TIMEOUT_MS } = fastify.config
  if (STORE !== 'mongo') return
  const client = new MongoClient(MONGODB_URI as string, {
    maxPoolSize: MONGODB_POOL_SIZE,
    serverSelectionTimeoutMS: MONGODB_TIMEOUT_MS,
    connectTimeoutMS: MONGODB_TIMEOUT_MS,
    // bookings must survive a primary failover: acknowledged by a majority
    writeConcern: { w: 'majority' },
    retryWrites: true
  })
  await client.connect()
  fastify.decorate('mongo', client)
  fastify.addHook('onClose', async () => { await client.close() })
}, { name: 'mongo', dependencies: ['config'] })
