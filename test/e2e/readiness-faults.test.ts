/**
 * Real faults against dependencies this test starts itself (never the machine's
 * shared Redis on 6379 or PostgreSQL on 5432): a throwaway redis-server and a
 * throwaway PostgreSQL cluster are stopped and started again under a running
 * app, which must report them in GET /health/ready (503 naming the dependency,
 * then 200 again) and answer bookings with 503, never 500.
 */
import { execFile, spawnSync } from 'node:child_process'
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { buildApp, tempDataDir } from '../helpers/build-app.ts'
import { one, parseExposition } from '../helpers/prometheus-text.ts'
import { redisServerAvailable, throwawayRedis } from '../helpers/redis-server.ts'
import { freePort } from '../helpers/server-process.ts'

const execFileAsync = promisify(execFile)

/** How long a dependency may take to be seen down or back up (polling, not a measured threshold). */
const SETTLE_MS = 30_000

interface Ready { status: number, body: any }

async function ready (app: FastifyInstance): Promise<Ready> {
  const res = await app.inject({ method: 'GET', url: '/health/ready' })
  return { status: res.statusCode, body: res.json() }
}

/** Polls GET /health/ready until it answers `status`; returns the last answer. */
async function readyUntil (app: FastifyInstance, status: number): Promise<Ready> {
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

async function createEvent (app: FastifyInstance, capacity: number): Promise<{ eventId: string, sectionId: string }> {
  const res = await app.inject({ method: 'POST', url: '/api/events', payload: { name: 'Fault show', sections: [{ name: 'A', price: 1, capacity }] } })
  if (res.statusCode !== 201) throw new Error(`POST /api/events answered ${res.statusCode}: ${res.body}`)
  const event = res.json().data
  return { eventId: event._id, sectionId: event.sections[0]._id }
}

// ---------------------------------------------------------------------------
// A throwaway PostgreSQL cluster: initdb + pg_ctl, as the postgres OS user when we are root

function pgBinDir (): string | undefined {
  const onPath = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' })
  if (onPath.error === undefined && onPath.status === 0) {
    const dir = onPath.stdout.trim()
    if (existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'pg_ctl'))) return dir
  }
  const base = '/usr/lib/postgresql'
  if (!existsSync(base)) return undefined
  const versions = readdirSync(base)
    .filter(v => existsSync(join(base, v, 'bin', 'initdb')) && existsSync(join(base, v, 'bin', 'pg_ctl')))
    .sort((a, b) => Number(b) - Number(a))
  return versions.length > 0 ? join(base, versions[0], 'bin') : undefined
}

const isRoot = process.getuid?.() === 0

function postgresUser (): { uid: number, gid: number } | undefined {
  const uid = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' })
  const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' })
  if (uid.status !== 0 || gid.status !== 0) return undefined
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) }
}

function pgMissing (): string | undefined {
  if (pgBinDir() === undefined) return 'PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or under /usr/lib/postgresql/*/bin'
  if (isRoot) {
    if (postgresUser() === undefined) return 'running as root and there is no postgres OS user to run initdb as'
    if (spawnSync('runuser', ['--help']).error !== undefined) return 'running as root and runuser is not installed'
  }
  return undefined
}

interface Cluster { port: number, url: string, start: () => Promise<void>, stop: () => Promise<void>, destroy: () => Promise<void> }

async function createCluster (t: { teardown: (fn: () => unknown) => void }): Promise<Cluster> {
  const bin = pgBinDir() as string
  const dir = mkdtempSync(join(tmpdir(), 'booking-pg-'))
  const data = join(dir, 'data')
  const port = await freePort()
  if (isRoot) {
    const user = postgresUser()!
    chownSync(dir, user.uid, user.gid)
  } else {
    mkdirSync(data, { mode: 0o700 })
  }
  /** Runs a PostgreSQL tool as the postgres user (root) or as ourselves. */
  const run = async (tool: string, args: string[]): Promise<void> => {
    const [file, argv] = isRoot ? ['runuser', ['-u', 'postgres', '--', join(bin, tool), ...args]] : [join(bin, tool), args]
    try {
      await execFileAsync(file, argv, { cwd: dir, timeout: 120_000 })
    } catch (err) {
      const log = existsSync(join(dir, 'log')) ? readFileSync(join(dir, 'log'), 'utf8') : ''
      throw new Error(`${tool} ${args.join(' ')} failed: ${(err as Error).message}\n${log}`)
    }
  }
  let running = false
  const cluster: Cluster = {
    port,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    async start () {
      await run('pg_ctl', ['-D', data, '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1`, '-l', join(dir, 'log'), '-w', '-t', '60', 'start'])
      running = true
    },
    async stop () {
      await run('pg_ctl', ['-D', data, '-m', 'fast', '-w', '-t', '60', 'stop'])
      running = false
    },
    async destroy () {
      if (running) await run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']).catch(() => {})
      running = false
      rmSync(dir, { recursive: true, force: true })
    }
  }
  // a crashed test run must not leave a postmaster behind
  const onExit = (): void => {
    if (!running) return
    const argv = ['-D', data, '-m', 'immediate', 'stop']
    if (isRoot) spawnSync('runuser', ['-u', 'postgres', '--', join(bin, 'pg_ctl'), ...argv])
    else spawnSync(join(bin, 'pg_ctl'), argv)
  }
  process.once('exit', onExit)
  t.teardown(async () => {
    process.off('exit', onExit)
    await cluster.destroy()
  })
  await run('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-N', '-E', 'UTF8'])
  await cluster.start()
  return cluster
}

// ---------------------------------------------------------------------------

const redisSkip = await redisServerAvailable()
if (redisSkip !== undefined) console.log(`# SKIPPED Redis readiness faults: ${redisSkip}`)

t.test('a Redis node going down and coming back', { skip: redisSkip }, async t => {
  const redis = await throwawayRedis(t)
  const { port } = redis
  t.not(port, 6379, 'never the shared Redis')

  const app = await buildApp(t, { DATA_DIR: tempDataDir(t), REDIS_NODES: `redis://127.0.0.1:${port}`, LOCK_WAIT_MS: '300' })
  const node = `redis:127.0.0.1:${port}`

  const up = await ready(app)
  t.equal(up.status, 200, 'ready while Redis runs')
  t.equal(up.body.data?.checks?.[node]?.ok, true, `${node} is checked`)
  const { eventId, sectionId } = await createEvent(app, 10)
  t.equal((await app.inject({ method: 'POST', url: '/bookings', payload: { eventId, sectionId, qty: 1, userId: 'before' } })).statusCode, 201)

  await redis.kill()
  const down = await readyUntil(app, 503)
  t.equal(down.status, 503, 'not ready once Redis is killed')
  t.equal(down.body.success, false)
  t.equal(down.body.error?.code, 'DEPENDENCY_DOWN')
  t.equal(down.body.error?.dependency, node, 'the Redis node is named')
  t.match(down.body.error?.message, node)
  t.equal(down.body.error?.checks?.['store:embedded']?.ok, true, 'the store is still fine')

  const refused = await app.inject({ method: 'POST', url: '/bookings', payload: { eventId, sectionId, qty: 1, userId: 'during' } })
  t.equal(refused.statusCode, 503, 'a booking without a lock quorum answers 503')
  t.equal(refused.json().error?.code, 'BUSY')
  t.ok(Number(refused.headers['retry-after']) >= 1, 'with Retry-After')
  t.ok(await metricValue(app, 'lock_failures_total', { reason: 'unavailable' }) >= 1, 'counted as a lock failure for lack of quorum')
  t.equal(await metricValue(app, 'bookings_total', { outcome: 'busy' }), 1, 'counted as busy')

  await redis.start()
  const back = await readyUntil(app, 200)
  t.equal(back.status, 200, 'ready again once Redis is back on the same port')
  t.equal(back.body.data?.checks?.[node]?.ok, true)
  const after = await app.inject({ method: 'POST', url: '/bookings', payload: { eventId, sectionId, qty: 1, userId: 'after' } })
  t.equal(after.statusCode, 201, 'bookings work again')
  const event = (await app.inject({ method: 'GET', url: `/api/events/${eventId}` })).json().data
  t.equal(event.sections[0].remaining, 8, 'exactly the two confirmed bookings took seats')
})

const pgSkip = pgMissing()
if (pgSkip !== undefined) console.log(`# SKIPPED PostgreSQL readiness faults: ${pgSkip}`)

t.test('PostgreSQL going down and coming back', { skip: pgSkip }, async t => {
  const cluster = await createCluster(t)
  t.not(cluster.port, 5432, 'never the shared PostgreSQL')

  const app = await buildApp(t, { STORE: 'postgres', DATABASE_URL: cluster.url, PG_POOL_SIZE: '4', LOCK_WAIT_MS: '2000' })
  const up = await ready(app)
  t.equal(up.status, 200, 'ready while PostgreSQL runs')
  t.equal(up.body.data?.checks?.['store:postgres']?.ok, true)
  const { eventId, sectionId } = await createEvent(app, 10)
  t.equal((await app.inject({ method: 'POST', url: '/bookings', payload: { eventId, sectionId, qty: 2, userId: 'before' } })).statusCode, 201)

  await cluster.stop()
  const down = await readyUntil(app, 503)
  t.equal(down.status, 503, 'not ready once PostgreSQL is stopped')
  t.equal(down.body.error?.code, 'DEPENDENCY_DOWN')
  t.equal(down.body.error?.dependency, 'store:postgres', 'the store is named')
  t.equal(down.body.error?.checks?.['store:postgres']?.ok, false)

  for (const userId of ['during-1', 'during-2']) {
    const res = await app.inject({ method: 'POST', url: '/bookings', payload: { eventId, sectionId, qty: 1, userId } })
    t.equal(res.statusCode, 503, `POST /bookings answers 503 (${res.body})`)
    t.ok(['STORE_UNAVAILABLE', 'BUSY'].includes(res.json().error?.code), `code ${res.json().error?.code}`)
    t.ok(Number(res.headers['retry-after']) >= 1, 'with Retry-After')
  }
  const read = await app.inject({ method: 'GET', url: `/api/events/${eventId}` })
  t.equal(read.statusCode, 503, 'reads answer 503 too')
  t.equal(read.json().error?.code, 'STORE_UNAVAILABLE')
  const create = await app.inject({ method: 'POST', url: '/api/events', payload: { name: 'x', sections: [{ name: 'A', price: 1, capacity: 1 }] } })
  t.equal(create.statusCode, 503, 'writes answer 503 too')
  t.ok(await metricValue(app, 'store_errors_total', { kind: 'unavailable' }) >= 1, 'store_errors_total{kind="unavailable"} counted')

  await cluster.start()
  const back = await readyUntil(app, 200)
  t.equal(back.status, 200, 'ready again once PostgreSQL is back')
  const after = await app.inject({ method: 'POST', url: '/bookings', payload: { eventId, sectionId, qty: 1, userId: 'after' } })
  t.equal(after.statusCode, 201, 'bookings work again')
  const event = (await app.inject({ method: 'GET', url: `/api/events/${eventId}` })).json().data
  t.equal(event.sections[0].remaining, 7, 'nothing was booked while PostgreSQL was down')
  const list = (await app.inject({ method: 'GET', url: `/bookings?eventId=${eventId}` })).json().data
  t.same(list.items.map((b: { userId: string }) => b.userId).sort(), ['after', 'before'], 'only the bookings answered 201 exist')
})
