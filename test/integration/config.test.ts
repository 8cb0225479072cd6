import t from 'tap'
import { buildApp } from '../helpers/build-app.ts'
import { pgliteDataDir, tempDataDir } from '../helpers/databases.ts'

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
    [{ STORE: 'oracle' }, /STORE/],
    [{ MAX_CONNECTIONS: '0' }, /MAX_CONNECTIONS/],
    [{ REQUEST_TIMEOUT_MS: '1000', HEADERS_TIMEOUT_MS: '2000' }, /HEADERS_TIMEOUT_MS \(2000\) must not exceed REQUEST_TIMEOUT_MS \(1000\)/]
  ]
  for (const [env, message] of cases) {
    const err = await buildApp(t, { DATA_DIR: '/nonexistent-never-created', ...env }).then(() => undefined, (e: Error) => e)
    t.ok(err, `${JSON.stringify(env)} refused`)
    t.match(err?.message, message, `${JSON.stringify(env)}: ${err?.message}`)
  }
})

t.test('defaults: embedded store, in-process lock, batching on', async t => {
  const app = await buildApp(t, { DATA_DIR: await pgliteDataDir(t) })
  t.equal(app.config.STORE, 'embedded')
  t.equal(app.locker.kind, 'local')
  t.equal(app.config.BATCH_MAX, 256)
  t.equal(app.config.LOCK_WAIT_MS, 5000)
})

t.test('the HTTP server gets its limits from the config', async t => {
  const defaults = await buildApp(t, { DATA_DIR: await pgliteDataDir(t) })
  t.match(defaults.server, { requestTimeout: 30_000, headersTimeout: 10_000, keepAliveTimeout: 72_000, timeout: 120_000, maxConnections: 10_000 }, 'defaults')
  const set = await buildApp(t, { DATA_DIR: await pgliteDataDir(t), REQUEST_TIMEOUT_MS: '2000', HEADERS_TIMEOUT_MS: '1000', KEEP_ALIVE_TIMEOUT_MS: '5000', CONNECTION_TIMEOUT_MS: '0', MAX_CONNECTIONS: '50' })
  t.match(set.server, { requestTimeout: 2000, headersTimeout: 1000, keepAliveTimeout: 5000, timeout: 0, maxConnections: 50 }, 'as configured')
})

t.test('unreachable Redis quorum stops start-up', async t => {
  const err = await buildApp(t, { DATA_DIR: tempDataDir(t), REDIS_NODES: 'redis://127.0.0.1:1' }).then(() => undefined, (e: Error) => e)
  t.match(err?.message, /^REDIS_NODES: only 0 of 1 Redis node\(s\) reachable, the lock needs 1: Redis at 127\.0\.0\.1:1 did not answer: ECONNREFUSED$/)
})
