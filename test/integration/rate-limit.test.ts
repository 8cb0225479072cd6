import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../helpers/build-app.ts'
import { createEvent } from '../helpers/create-event.ts'
import { pgliteDataDir } from '../helpers/databases.ts'
import { injectAs, injectClient } from '../helpers/http-client.ts'
import { missing } from '../helpers/services.ts'
import { storeSetup } from '../helpers/store-setups.ts'
import { principals, roleHeaders } from '../helpers/tokens.ts'

// the limit is per principal: each user is a customer with its own token, booking as itself
const as = await principals()

interface User { userId: string, headers: Record<string, string> }

async function customer (userId: string): Promise<User> {
  return { userId, headers: await roleHeaders('customer', userId) }
}

async function section (app: FastifyInstance) {
  const { eventId, sectionId } = await createEvent(injectClient(app, as.organizer), [100], { name: 'Limited', price: 1, sectionNames: ['A'] })
  return { eventId, sectionId }
}

const book = (app: FastifyInstance, ids: object, { userId, headers }: User, url = '/bookings') =>
  injectAs(app, headers, { method: 'POST', url, payload: { ...ids, qty: 1, userId } })

t.test('off by default: no limit', async t => {
  const app = await buildApp(t, { DATA_DIR: await pgliteDataDir(t) })
  const ids = await section(app)
  const eager = await customer('eager')
  const statuses = await Promise.all(Array.from({ length: 12 }, async () => (await book(app, ids, eager)).statusCode))
  t.same(statuses, Array(12).fill(201))
})

t.test('RATE_LIMIT_MAX per user: 429 RATE_LIMITED beyond it, other users unaffected', async t => {
  const app = await buildApp(t, { DATA_DIR: await pgliteDataDir(t), RATE_LIMIT_MAX: '3' })
  const ids = await section(app)
  const eager = await customer('eager')
  const first = [await book(app, ids, eager), await book(app, ids, eager, '/api/bookings'), await book(app, ids, eager)]
  t.same(first.map(r => r.statusCode), [201, 201, 201])
  const limited = await book(app, ids, eager, '/api/bookings')
  t.equal(limited.statusCode, 429, 'both aliases count toward one limit')
  t.match(limited.json(), { success: false, error: { code: 'RATE_LIMITED', retryAfter: Number } })
  t.ok(Number(limited.headers['retry-after']) > 0, 'Retry-After header')
  t.equal((await book(app, ids, await customer('patient'))).statusCode, 201, 'another user still books')
  const metrics = (await app.inject('/metrics')).body
  t.match(metrics, /^bookings_total\{outcome="limit"\} 1$/m)
  t.equal((await injectAs(app, as.service, `/bookings?eventId=${ids.eventId}`)).json().data.total, 4, 'the limited request booked nothing')
})

const pgRedis = storeSetup('postgres+redis')
t.test('with Redis the limit holds across instances', { skip: await missing('postgres', 'redis') }, async t => {
  const env = { ...await pgRedis.env(t), RATE_LIMIT_MAX: '2' }
  const a = await buildApp(t, env)
  const b = await buildApp(t, env)
  const ids = await section(a)
  const user = await customer(`shared-${Date.now()}`)
  t.equal((await book(a, ids, user)).statusCode, 201)
  t.equal((await book(b, ids, user)).statusCode, 201)
  t.equal((await book(a, ids, user)).statusCode, 429, 'the third request, on either instance, is limited')
  t.equal((await book(b, ids, user)).statusCode, 429)
})

t.test('deployments sharing a Redis count apart: the same sub is limited per deployment', { skip: await missing('postgres', 'redis') }, async t => {
  const one = await buildApp(t, { ...await pgRedis.env(t), RATE_LIMIT_MAX: '2' })
  const two = await buildApp(t, { ...await pgRedis.env(t), RATE_LIMIT_MAX: '2' })
  const user = await customer(`both-${Date.now()}`)
  const [inOne, inTwo] = [await section(one), await section(two)]
  t.same([(await book(one, inOne, user)).statusCode, (await book(one, inOne, user)).statusCode, (await book(one, inOne, user)).statusCode], [201, 201, 429])
  t.same([(await book(two, inTwo, user)).statusCode, (await book(two, inTwo, user)).statusCode], [201, 201], 'the other deployment\'s count is its own')
})
