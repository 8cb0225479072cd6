/**
 * Real faults against dependencies this test starts itself (never the machine's
 * shared Redis on 6379 or PostgreSQL on 5432): a throwaway redis-server and a
 * throwaway PostgreSQL cluster are stopped and started again under a running
 * app, which must report them in GET /health/ready (503 naming the dependency,
 * nodes by index and no address or driver error in the body, then 200 again)
 * and answer bookings with 503, never 500.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { buildApp } from '../helpers/build-app.ts'
import { createEvent as createEventVia } from '../helpers/create-event.ts'
import { pgliteDataDir } from '../helpers/databases.ts'
import { injectAs, injectClient, type ApiResponse } from '../helpers/http-client.ts'
import { pgClusterMissing, throwawayPgCluster } from '../helpers/pg-cluster.ts'
import { one, parseExposition } from '../helpers/prometheus-text.ts'
import { redisServerAvailable, throwawayRedis } from '../helpers/redis-server.ts'
import { principals } from '../helpers/tokens.ts'

// an organizer creates the events; a service books on behalf of the test's users and lists every booking
const as = await principals()

/** How long a dependency may take to be seen down or back up (polling, not a measured threshold). */
const SETTLE_MS = 30_000

const ready = async (app: FastifyInstance): Promise<ApiResponse> => await injectClient(app).request('GET', '/health/ready')

/** Polls GET /health/ready until it answers `status`; returns the last answer. */
async function readyUntil (app: FastifyInstance, status: number): Promise<ApiResponse> {
  const deadline = Date.now() + SETTLE_MS
  for (;;) {
    const answer = await ready(app)
    if (answer.status === status || Date.now() > deadline) return answer
    await sleep(100)
  }
}

async function metricValue (app: FastifyInstance, name: string, labels: Record<string, string>): Promise<number> {
  return one(parseExposition((await app.inject({ method: 'GET', url: '/metrics' })).body), name, labels)
}

const createEvent = async (app: FastifyInstance, capacity: number) =>
  await createEventVia(injectClient(app, as.organizer), [capacity], { name: 'Fault show', price: 1, sectionNames: ['A'] })

const redisSkip = await redisServerAvailable()
if (redisSkip !== undefined) console.log(`# SKIPPED Redis readiness faults: ${redisSkip}`)

t.test('a Redis node going down and coming back', { skip: redisSkip }, async t => {
  const redis = await throwawayRedis(t)
  const { port } = redis
  t.not(port, 6379, 'never the shared Redis')

  const app = await buildApp(t, { DATA_DIR: await pgliteDataDir(t), REDIS_NODES: `redis://127.0.0.1:${port}`, LOCK_WAIT_MS: '300' })
  const up = await ready(app)
  t.equal(up.status, 200, 'ready while Redis runs')
  t.same(up.body.data?.checks?.redis, { up: 1, of: 1, quorum: 1, down: [] }, 'the Redis node is checked')
  const { eventId, sectionId } = await createEvent(app, 10)
  t.equal((await injectAs(app, as.service, { method: 'POST', url: '/bookings', payload: { eventId, sectionId, qty: 1, userId: 'before' } })).statusCode, 201)

  await redis.kill()
  const down = await readyUntil(app, 503)
  t.equal(down.status, 503, 'not ready once Redis is killed')
  t.equal(down.body.success, false)
  t.equal(down.body.error?.code, 'DEPENDENCY_DOWN')
  t.equal(down.body.error?.dependency, 'redis', 'the lock quorum is named')
  t.same(down.body.error?.checks?.redis, { up: 0, of: 1, quorum: 1, down: [0] }, 'the node by its index')
  t.notMatch(down.text, String(port), 'no address in the public body')
  t.equal(down.body.error?.checks?.store?.ok, true, 'the store is still fine')

  const refused = await injectAs(app, as.service, { method: 'POST', url: '/bookings', payload: { eventId, sectionId, qty: 1, userId: 'during' } })
  t.equal(refused.statusCode, 503, 'a booking without a lock quorum answers 503')
  t.equal(refused.json().error?.code, 'BUSY')
  t.ok(Number(refused.headers['retry-after']) >= 1, 'with Retry-After')
  t.ok(await metricValue(app, 'lock_failures_total', { reason: 'unavailable' }) >= 1, 'counted as a lock failure for lack of quorum')
  t.equal(await metricValue(app, 'bookings_total', { outcome: 'busy' }), 1, 'counted as busy')

  await redis.start()
  const back = await readyUntil(app, 200)
  t.equal(back.status, 200, 'ready again once Redis is back on the same port')
  t.same(back.body.data?.checks?.redis?.down, [])
  const after = await injectAs(app, as.service, { method: 'POST', url: '/bookings', payload: { eventId, sectionId, qty: 1, userId: 'after' } })
  t.equal(after.statusCode, 201, 'bookings work again')
  const event = (await app.inject({ method: 'GET', url: `/api/events/${eventId}` })).json().data
  t.equal(event.sections[0].remaining, 8, 'exactly the two confirmed bookings took seats')
})

const pgSkip = pgClusterMissing()
if (pgSkip !== undefined) console.log(`# SKIPPED PostgreSQL readiness faults: ${pgSkip}`)

t.test('PostgreSQL going down and coming back', { skip: pgSkip }, async t => {
  const cluster = await throwawayPgCluster(t)
  t.not(cluster.port, 5432, 'never the shared PostgreSQL')

  const app = await buildApp(t, { STORE: 'postgres', DATABASE_URL: cluster.url, PG_POOL_SIZE: '4', LOCK_WAIT_MS: '2000' })
  const up = await ready(app)
  t.equal(up.status, 200, 'ready while PostgreSQL runs')
  t.equal(up.body.data?.checks?.store?.ok, true)
  const { eventId, sectionId } = await createEvent(app, 10)
  t.equal((await injectAs(app, as.service, { method: 'POST', url: '/bookings', payload: { eventId, sectionId, qty: 2, userId: 'before' } })).statusCode, 201)

  await cluster.stop()
  const down = await readyUntil(app, 503)
  t.equal(down.status, 503, 'not ready once PostgreSQL is stopped')
  t.equal(down.body.error?.code, 'DEPENDENCY_DOWN')
  t.equal(down.body.error?.dependency, 'store', 'the store is named')
  t.same(down.body.error?.checks?.store, { ok: false }, 'no driver error in the public body')
  t.notMatch(down.text, String(cluster.port), 'no address in the public body')

  for (const userId of ['during-1', 'during-2']) {
    const res = await injectAs(app, as.service, { method: 'POST', url: '/bookings', payload: { eventId, sectionId, qty: 1, userId } })
    t.equal(res.statusCode, 503, `POST /bookings answers 503 (${res.body})`)
    t.ok(['STORE_UNAVAILABLE', 'BUSY'].includes(res.json().error?.code), `code ${res.json().error?.code}`)
    t.ok(Number(res.headers['retry-after']) >= 1, 'with Retry-After')
  }
  const read = await app.inject({ method: 'GET', url: `/api/events/${eventId}` })
  t.equal(read.statusCode, 503, 'reads answer 503 too')
  t.equal(read.json().error?.code, 'STORE_UNAVAILABLE')
  const create = await injectAs(app, as.organizer, { method: 'POST', url: '/api/events', payload: { name: 'x', sections: [{ name: 'A', price: 1, capacity: 1 }] } })
  t.equal(create.statusCode, 503, 'writes answer 503 too')
  t.ok(await metricValue(app, 'store_errors_total', { kind: 'unavailable' }) >= 1, 'store_errors_total{kind="unavailable"} counted')

  await cluster.start()
  const back = await readyUntil(app, 200)
  t.equal(back.status, 200, 'ready again once PostgreSQL is back')
  const after = await injectAs(app, as.service, { method: 'POST', url: '/bookings', payload: { eventId, sectionId, qty: 1, userId: 'after' } })
  t.equal(after.statusCode, 201, 'bookings work again')
  const event = (await app.inject({ method: 'GET', url: `/api/events/${eventId}` })).json().data
  t.equal(event.sections[0].remaining, 7, 'nothing was booked while PostgreSQL was down')
  const list = (await injectAs(app, as.service, { method: 'GET', url: `/bookings?eventId=${eventId}` })).json().data
  t.same(list.items.map((b: { userId: string }) => b.userId).sort(), ['after', 'before'], 'only the bookings answered 201 exist')
})
