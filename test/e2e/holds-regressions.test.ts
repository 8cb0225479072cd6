/**
 * Holds behaviour that an earlier version got wrong, kept as regression tests:
 * the sold-out memory ends when the section's first hold expires, and one
 * deployment's sweeper lock never stops another's on a shared Redis.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import t from 'tap'
import { sweeperLockKey } from '../../lib/service/expiry-sweeper.ts'
import { createEvent, type EventView } from '../helpers/create-event.ts'
import { createTestDatabase } from '../helpers/databases.ts'
import { hold } from '../helpers/hold-requests.ts'
import { urlClient } from '../helpers/http-client.ts'
import { pollUntil } from '../helpers/poll.ts'
import { redisServerAvailable, throwawayRedis } from '../helpers/redis-server.ts'
import { startServer } from '../helpers/server-process.ts'
import { missing, REDIS_URL } from '../helpers/services.ts'
import { principals } from '../helpers/tokens.ts'

const as = await principals()

t.test('a section sold out by holds sells again once they are past expiresAt, before any sweep', {
  skip: await missing('postgres', 'redis')
}, async t => {
  // memory and sweeper both slow: the booking transaction alone must find the due hold
  const env = { DATABASE_URL: await createTestDatabase(t), REDIS_NODES: REDIS_URL, EXPIRY_SWEEP_MS: '60000', SOLD_OUT_CACHE_MS: '60000' }
  const servers = await Promise.all([1, 2].map(async () => await startServer(env)))
  t.teardown(async () => { await Promise.all(servers.map(async s => await s.stop())) })
  const [a, b] = servers.map(s => urlClient(s.url, { headers: as.service }))
  const { eventId, sectionId } = await createEvent(a, [2], { holdSeconds: 1, headers: as.organizer })
  const held = await hold(a, { eventId, sectionId }, 2, 'payer')
  const before = await b.request('POST', '/bookings', { eventId, sectionId, qty: 1, userId: 'early' })
  t.match([before.status, before.body.error], [409, { code: 'SOLD_OUT' }], 'sold out while held (now in B\'s memory)')
  await sleep(Math.max(0, Date.parse(held.body.data.expiresAt) - Date.now()) + 100)
  const after = await b.request('POST', '/bookings', { eventId, sectionId, qty: 1, userId: 'late' })
  t.equal(after.status, 201, `past expiresAt the seats are on sale at once: got ${after.status} ${after.text.slice(0, 120)}`)
})

t.test('a deployment\'s sweeper is not stopped by another deployment on the same Redis', {
  skip: await missing('postgres') ?? await redisServerAvailable()
}, async t => {
  // a Redis of this test's own: the foreign lock below must not stop other suites' sweepers
  const redis = await throwawayRedis(t)
  const server = await startServer({ DATABASE_URL: await createTestDatabase(t), REDIS_NODES: redis.url, EXPIRY_SWEEP_MS: '200' })
  t.teardown(async () => await server.stop())
  const client = urlClient(server.url, { headers: as.service })
  const { eventId, sectionId } = await createEvent(client, [3], { holdSeconds: 1, headers: as.organizer })
  // another deployment (another database) sweeping on the same Redis, or a dead instance of it with a long LOCK_TTL_MS
  const other = new Redis(redis.url)
  t.teardown(() => other.disconnect())
  await other.set(sweeperLockKey('postgres postgres://127.0.0.1:5432/another_deployment'), 'its sweeper', 'PX', 600_000)
  t.equal((await hold(client, { eventId, sectionId }, 2, 'payer')).status, 201)
  const back = await pollUntil('the expired hold\'s seats back', async () => {
    const res = await client.request<EventView>('GET', `/api/events/${eventId}`)
    return res.body.data!.sections[0].remaining === 3 ? true : undefined
  }, { timeoutMs: 10_000 }).catch(() => false)
  t.ok(back, 'seats back with no traffic while another deployment holds its own sweeper lock')
})
