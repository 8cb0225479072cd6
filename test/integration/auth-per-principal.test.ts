/**
 * What is scoped to the principal (the token's sub), not to the request:
 * Idempotency-Key (on every store set-up) and the booking rate limit (in
 * memory and in Redis). Subs are unique per run: Redis keeps rate-limit counts
 * across test runs.
 */
import { randomBytes } from 'node:crypto'
import t, { type Test } from 'tap'
import { buildApp } from '../helpers/build-app.ts'
import { createEvent } from '../helpers/create-event.ts'
import { pgliteDataDir } from '../helpers/databases.ts'
import { injectClient, type ApiClient } from '../helpers/http-client.ts'
import { missing } from '../helpers/services.ts'
import { STORE_SETUPS, storeSetup } from '../helpers/store-setups.ts'
import { bearer, signToken } from '../helpers/tokens.ts'

const run = randomBytes(4).toString('hex')

/** An app on env, a client per principal (sub → roles, subs made unique to this run) and a section of 10 seats. */
async function setUp (t: Test, env: Record<string, string>, principals: Record<string, string[]>) {
  const app = await buildApp(t, env)
  const as = async (sub: string, roles: string[]): Promise<ApiClient> => injectClient(app, bearer(await signToken({ sub: `${sub}-${run}`, roles })))
  const clients: Record<string, ApiClient> = {}
  for (const [sub, roles] of Object.entries(principals)) clients[sub] = await as(sub, roles)
  const { eventId, sectionId } = await createEvent(await as('olga', ['organizer']), [10])
  const book = async (client: ApiClient, body: Record<string, unknown> = {}, headers: Record<string, string> = {}) =>
    await client.request('POST', '/bookings', { eventId, sectionId, qty: 1, ...body }, headers)
  const total = async (): Promise<number> => (await clients.admin.request('GET', `/bookings?eventId=${eventId}`)).body.data.total
  return { clients, book, total }
}

for (const setup of STORE_SETUPS) {
  const skip = await missing(...setup.needs)
  if (skip !== undefined) console.log(`# SKIPPED per-principal idempotency on ${setup.name}: ${skip}`)

  t.test(`Idempotency-Key is per principal (${setup.name})`, { skip }, async t => {
    const { clients: { alice, bob, admin }, book, total } = await setUp(t, await setup.env(t), { alice: ['customer'], bob: ['customer'], admin: ['admin'] })
    const key = { 'idempotency-key': `same-key-${run}` }
    const first = await book(alice, {}, key)
    const other = await book(bob, {}, key)
    t.same([first.status, other.status], [201, 201], 'two customers, the same key: both booked')
    t.not(other.body.data._id, first.body.data._id, 'two bookings')
    t.same([first.body.data.userId, other.body.data.userId], [`alice-${run}`, `bob-${run}`], 'each for its own principal')
    t.notOk(other.headers['idempotent-replayed'], 'the second is not a replay of the first')

    const again = await book(alice, {}, key)
    t.equal(again.status, 201)
    t.equal(again.headers['idempotent-replayed'], 'true', 'the same customer, the same key: a replay')
    t.equal(again.body.data._id, first.body.data._id, 'of its own booking')

    // admin books for alice with alice's key: another principal, another request
    const onBehalf = await book(admin, { userId: `alice-${run}` }, key)
    t.equal(onBehalf.status, 201)
    t.notOk(onBehalf.headers['idempotent-replayed'], 'a key is not shared with who books on the user\'s behalf')
    t.equal(await total(), 3, 'three bookings stored, the replay added none')
  })
}

const rateLimitSetups = [
  { name: 'in memory', env: async (t: Test) => ({ DATA_DIR: await pgliteDataDir(t) }), skip: undefined },
  { name: 'in Redis', env: async (t: Test) => await storeSetup('postgres+redis').env(t), skip: await missing('postgres', 'redis') }
]

for (const setup of rateLimitSetups) {
  t.test(`rate limit per principal, not per body userId (${setup.name})`, { skip: setup.skip }, async t => {
    const env = { ...await setup.env(t), RATE_LIMIT_MAX: '2' }
    const { clients: { alice, bob, service }, book, total } = await setUp(t, env, { alice: ['customer'], bob: ['customer'], service: ['service'], admin: ['admin'] })
    t.same([(await book(alice)).status, (await book(alice)).status], [201, 201], 'alice: two bookings within the limit')
    const limited = await book(alice)
    t.equal(limited.status, 429, 'alice\'s third is limited')
    t.equal(limited.body.error?.code, 'RATE_LIMITED')
    t.equal((await book(bob)).status, 201, 'bob, another principal, is not')
    // the service names alice in the body: its own count, not alice's
    t.equal((await book(service, { userId: `alice-${run}` })).status, 201, 'a service booking for alice is not limited by alice\'s count')
    t.equal(await total(), 4, 'the limited request booked nothing')
  })
}
