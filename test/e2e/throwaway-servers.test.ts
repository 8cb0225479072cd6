/**
 * The throwaway servers that fault suites break on purpose: each fault lands
 * on the server the helper started (never the shared ones), and the server
 * comes back from it.
 */
import pg from 'pg'
import { Redis } from 'ioredis'
import t from 'tap'
import { pgClusterMissing, throwawayPgCluster } from '../helpers/pg-cluster.ts'
import { processState, processTree } from '../helpers/processes.ts'
import { redisServerAvailable, throwawayRedis } from '../helpers/redis-server.ts'

const states = (pid: number): string[] => [...new Set(processTree(pid).map(processState))].map(String)

t.test('a throwaway redis-server: freeze, thaw, stop, start, kill', { skip: await redisServerAvailable() }, async t => {
  const redis = await throwawayRedis(t)
  t.not(redis.port, 6379, 'never the shared Redis')
  const ping = async (): Promise<string> => {
    const client = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 0 })
    try {
      await client.connect()
      return await client.ping()
    } finally {
      client.disconnect()
    }
  }
  t.equal(await ping(), 'PONG')
  const pid = redis.pid()!
  await redis.freeze()
  t.same(states(pid), ['T'], 'frozen: the process is stopped')
  redis.thaw()
  t.equal(await ping(), 'PONG', 'thawed: it answers again')
  await redis.stop()
  t.equal(redis.pid(), undefined, 'stopped')
  await redis.start()
  t.equal(await ping(), 'PONG', 'started again on the same port')
  await redis.freeze()
  await redis.kill()
  t.equal(redis.pid(), undefined, 'a frozen server can be killed')
})

t.test('a throwaway PostgreSQL cluster: admin SQL, freeze, thaw, stop modes, kill', { skip: pgClusterMissing() }, async t => {
  const cluster = await throwawayPgCluster(t)
  t.not(cluster.port, 5432, 'never the shared PostgreSQL')
  t.same(await cluster.admin('SELECT 1 AS one'), [{ one: 1 }])

  const client = new pg.Client({ connectionString: cluster.url })
  client.on('error', () => {})
  await client.connect()
  const [{ pid: backend }] = (await client.query('SELECT pg_backend_pid() AS pid')).rows
  t.same(await cluster.admin('SELECT pg_terminate_backend($1) AS done', [backend]), [{ done: true }])
  await t.rejects(client.query('SELECT 1'), 'the terminated connection is gone')
  await client.end().catch(() => {})

  const postmaster = cluster.pid()!
  await cluster.admin('CREATE TABLE kept (n int)')
  await cluster.freeze()
  t.same(states(postmaster), ['T'], 'frozen: the postmaster and every backend are stopped')
  cluster.thaw()
  await cluster.admin('INSERT INTO kept VALUES (1)')
  t.pass('thawed: it answers again')

  await cluster.stop('immediate')
  t.equal(cluster.pid(), undefined, 'stopped (immediate)')
  await cluster.start()
  await cluster.admin('INSERT INTO kept VALUES (2)')
  await cluster.kill()
  t.equal(cluster.pid(), undefined, 'killed')
  await cluster.start()
  t.same(await cluster.admin('SELECT n FROM kept ORDER BY n'), [{ n: 1 }, { n: 2 }], 'committed rows survive the crash')
  await cluster.stop('fast')
  t.equal(cluster.pid(), undefined, 'stopped (fast)')
})
