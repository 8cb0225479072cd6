import fp from 'fastify-plugin'
import { Redis } from 'ioredis'
import { localLocker } from '../lib/cluster/local-locker.ts'
import type { Locker } from '../lib/cluster/locker.ts'
import { redlockLocker } from '../lib/cluster/redlock-locker.ts'
import { unreachableError } from '../lib/support/unreachable.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** one client per REDIS_NODES entry (empty without Redis) */
    redis: Redis[]
    locker: Locker
  }
}

/** Longest any Redis command waits for its answer: a server that stops answering costs this, not a hang. */
const COMMAND_TIMEOUT_MS = 500
/** Longest pause between two reconnection attempts to a server that went away. */
const RECONNECT_MAX_MS = 500

/**
 * The section lock: RedLock over the REDIS_NODES servers (independent nodes,
 * quorum N/2+1), or an in-process lock when REDIS_NODES is not set.
 */
export default fp(async (fastify) => {
  const { REDIS_NODES, LOCK_TTL_MS } = fastify.config
  const urls = REDIS_NODES === undefined ? [] : REDIS_NODES.split(',')
  // No offline queue: a lock command to a node that is down fails at once and
  // counts as a vote against, instead of waiting for a reconnect.
  const clients = urls.map(url => new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    commandTimeout: COMMAND_TIMEOUT_MS,
    // a server back on its port is used again within this, not after ioredis' default 2 s backoff
    retryStrategy: (times: number) => Math.min(times * 50, RECONNECT_MAX_MS)
  }))
  // each node's last error: connect() itself only says "Connection is closed."
  const lastErrors: unknown[] = []
  clients.forEach((client, node) => {
    client.on('error', (err) => {
      lastErrors[node] = err
      fastify.log.debug({ err: err.message, node }, 'redis node error')
    })
  })
  fastify.decorate('redis', clients)
  fastify.addHook('onClose', async () => { for (const client of clients) client.disconnect() })

  if (clients.length > 0) {
    const results = await Promise.allSettled(clients.map(async c => await c.connect()))
    const up = results.filter(r => r.status === 'fulfilled').length
    const quorum = Math.floor(clients.length / 2) + 1
    if (up < quorum) {
      for (const client of clients) client.disconnect() // stop reconnecting: start-up is over
      const down = results.flatMap((r, node) => r.status === 'rejected' ? [unreachableError('Redis', urls[node], 6379, lastErrors[node] ?? r.reason).message] : [])
      throw new Error(`REDIS_NODES: only ${up} of ${clients.length} Redis node(s) reachable, the lock needs ${quorum}: ${down.join('; ')}`)
    }
    if (up < clients.length) fastify.log.warn({ up, nodes: clients.length }, 'some Redis nodes are down; locking on the quorum')
  }

  const address = (node: number): string => `${clients[node].options.host ?? '?'}:${clients[node].options.port ?? '?'}`
  const locker = clients.length > 0
    ? redlockLocker(clients, {
      ttlMs: LOCK_TTL_MS,
      onQuorum: ({ up, down }) => {
        const silent = down.map(node => ({ node, address: address(node) }))
        if (up) fastify.log.info({ silent }, 'lock quorum back: bookings are taken again')
        else fastify.log.error({ silent }, 'lock quorum lost: bookings answer 503 until a quorum of Redis nodes answers')
      }
    })
    : localLocker()
  fastify.decorate('locker', locker)
  fastify.addHook('onClose', async () => { await locker.close() })
  fastify.log.info({ lock: locker.kind, nodes: locker.nodes.map(n => n.name) }, 'section lock ready')
}, { name: 'redis', dependencies: ['config'] })
