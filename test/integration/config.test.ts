import t from 'tap'
import { buildApp } from '../helpers/build-app.ts'
import { tempDataDir } from '../helpers/databases.ts'

t.test('a bad value stops start-up with a message naming the variable', async t => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ PORT: 'eighty' }, /PORT/],
    [{ BATCH_MAX: '0' }, /BATCH_MAX/],
    [{ LOCK_WAIT_MS: '-5' }, /LOCK_WAIT_MS/],
    [{ LOG_LEVEL: 'loud' }, /LOG_LEVEL/],
    [{ REDIS_NODES: 'localhost:6379' }, /REDIS_NODES/],
    [{ DATABASE_URL: 'mysql://x' }, /DATABASE_URL/],
    [{ STORE: 'postgres' }, /STORE=postgres needs DATABASE_URL/],
    [{ STORE: 'mongo' }, /STORE=mongo needs MONGODB_URI/],
    [{ STORE: 'oracle' }, /STORE/]
  ]
  for (const [env, message] of cases) {
    const err = await buildApp(t, { DATA_DIR: '/nonexistent-never-created', ...env }).then(() => undefined, (e: Error) => e)
    t.ok(err, `${JSON.stringify(env)} refused`)
    t.match(err?.message, message, `${JSON.stringify(env)}: ${err?.message}`)
  }
})

t.test('defaults: embedded store, in-process lock, batching on', async t => {
  const app = await buildApp(t, { DATA_DIR: tempDataDir(t) })
  t.equal(app.config.STORE, 'embedded')
  t.equal(app.locker.kind, 'local')
  t.equal(app.config.BATCH_MAX, 256)
  t.equal(app.config.LOCK_WAIT_MS, 5000)
})

t.test('unreachable Redis quorum stops start-up', async t => {
  const err = await buildApp(t, { DATA_DIR: tempDataDir(t), REDIS_NODES: 'redis://127.0.0.1:1' }).then(() => undefined, (e: Error) => e)
  t.match(err?.message, /REDIS_NODES: only 0 of 1 Redis node/)
})
