import t from 'tap'
import { createTestDatabase, PG_ADMIN_URL } from '../helpers/databases.ts'
import { missing, REDIS_URL } from '../helpers/services.ts'
import { embeddedEnv, formatResult, multiInstance, seedRace } from './concurrency-scenarios.ts'

t.test('seed race on a real server process: embedded store', async t => {
  const result = await seedRace(t, await embeddedEnv(t))
  t.comment(formatResult(result))
  t.same(result.violations, [])
  t.same(result.statuses, { 201: 5, 409: 15 })
})

t.test('seed race on a real server process: PostgreSQL + Redis', { skip: await missing('postgres', 'redis') }, async t => {
  const result = await seedRace(t, { DATABASE_URL: await createTestDatabase(t), REDIS_NODES: REDIS_URL })
  t.comment(formatResult(result))
  t.same(result.violations, [])
  t.same(result.statuses, { 201: 5, 409: 15 })
})

t.test('three instances sharing PostgreSQL and Redis', { skip: await missing('postgres', 'redis') }, async t => {
  const result = await multiInstance(t)
  t.comment(formatResult(result))
  t.same(result.violations, [], `no violations (PostgreSQL at ${new URL(PG_ADMIN_URL).host})`)
  t.equal(result.requests, 2400)
  t.notOk(result.statuses['503'], 'no 503')
  t.ok(result.sections.some(s => s.remaining === 0) && result.sections.some(s => s.remaining > 0), 'some sections sold out, some not')
})
