/**
 * A real Prometheus server (Debian's `prometheus` package, installed by
 * .ci/run) scrapes a real server process, using the job of prometheus.yml
 * pointed at the test's port; the samples it stores must match what happened.
 * With METRICS_TOKEN set on the service, the job's commented authorization
 * block is uncommented, as an operator would, and the token read from a file.
 */
import { randomBytes } from 'node:crypto'
import { spawn, spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import type { TestContext } from '../helpers/context.ts'
import { createEvent } from '../helpers/create-event.ts'
import { pgliteDataDir, tempDataDir } from '../helpers/databases.ts'
import { urlClient } from '../helpers/http-client.ts'
import { configWithMetricsToken, shippedConfig } from '../helpers/prometheus-config.ts'
import { freePort, startServer, type ServerProcess } from '../helpers/server-process.ts'
import { principals } from '../helpers/tokens.ts'

const missing = spawnSync('prometheus', ['--version']).error === undefined ? undefined : 'prometheus not installed (apt-get install prometheus)'
if (missing !== undefined) console.log(`# SKIPPED Prometheus scrape: ${missing}`)

/** Polls a PromQL query until `accept` takes its result (bounded); returns the last result. */
async function query (base: string, promql: string, accept: (value: number | undefined) => boolean): Promise<number | undefined> {
  let value: number | undefined
  for (let i = 0; i < 120; i++) {
    const res = await fetch(`${base}/api/v1/query?query=${encodeURIComponent(promql)}`).catch(() => undefined)
    if (res?.ok === true) {
      const body = await res.json() as { data: { result: Array<{ value: [number, string] }> } }
      value = body.data.result.length === 0 ? undefined : Number(body.data.result[0].value[1])
      if (accept(value)) return value
    }
    await sleep(250)
  }
  return value
}

/** A server process on a fresh embedded store; an organizer creates an event of 3 seats, a service books 5 users on it. */
async function bookedServer (t: TestContext, env: Record<string, string> = {}): Promise<{ server: ServerProcess, statuses: number[] }> {
  const server = await startServer({ DATA_DIR: await pgliteDataDir(t), ...env })
  t.teardown(async () => await server.stop())
  const as = await principals()
  const client = urlClient(server.url, { headers: as.service })
  const { eventId, sectionId } = await createEvent(client, [3], { name: 'Scraped', price: 1, sectionNames: ['A'], headers: as.organizer })
  const statuses = await Promise.all(Array.from({ length: 5 }, async (_, i) =>
    (await client.request('POST', '/bookings', { eventId, sectionId, qty: 1, userId: `p${i}` })).status))
  return { server, statuses: statuses.sort() }
}

/** Prometheus running `config` (the shipped job, aimed at the server, scraping every second); returns its base URL. */
async function startPrometheus (t: TestContext, dir: string, config: string, server: ServerProcess): Promise<string> {
  const file = join(dir, 'prometheus.yml')
  writeFileSync(file, config
    .replace('host.docker.internal:3000', new URL(server.url).host)
    .replace(/scrape_interval: \d+s/g, 'scrape_interval: 1s'))
  const port = await freePort()
  const prometheus = spawn('prometheus', [
    `--config.file=${file}`, `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`
  ], { stdio: 'ignore' })
  t.teardown(() => { prometheus.kill('SIGKILL') })
  return `http://127.0.0.1:${port}`
}

t.test('Prometheus scrapes /metrics and stores the booking counters', { skip: missing }, async t => {
  const { server, statuses } = await bookedServer(t)
  t.same(statuses, [201, 201, 201, 409, 409])

  // the shipped job, aimed at this test's server instead of host.docker.internal:3000
  const base = await startPrometheus(t, tempDataDir(t, 'booking-prometheus-'), shippedConfig(), server)

  t.equal(await query(base, 'up{job="booking"}', v => v === 1), 1, 'the target is up')
  t.equal(await query(base, 'bookings_total{job="booking",outcome="confirmed"}', v => v === 3), 3, 'confirmed bookings as scraped')
  t.equal(await query(base, 'bookings_total{job="booking",outcome="sold_out"}', v => v === 2), 2, 'sold out as scraped')
  t.equal(await query(base, 'sum(http_request_duration_seconds_count{job="booking",route="/bookings"})', v => v === 5), 5, 'HTTP histogram by route pattern')
})

t.test('with METRICS_TOKEN set, /metrics wants it, and Prometheus scrapes with the authorization block uncommented', { skip: missing }, async t => {
  const token = randomBytes(24).toString('base64url')
  const { server, statuses } = await bookedServer(t, { METRICS_TOKEN: token })
  t.same(statuses, [201, 201, 201, 409, 409])

  for (const [what, headers] of [
    ['without a token', {}],
    ['with a wrong token', { authorization: `Bearer ${randomBytes(24).toString('base64url')}` }]
  ] as const) {
    const res = await fetch(`${server.url}/metrics`, { headers })
    t.equal(res.status, 401, `GET /metrics ${what}: 401`)
    t.equal((await res.json() as { error?: { code?: string } }).error?.code, 'UNAUTHENTICATED', `${what}: UNAUTHENTICATED`)
  }
  const scraped = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${token}` } })
  t.equal(scraped.status, 200, 'GET /metrics with the token: 200')

  const dir = tempDataDir(t, 'booking-prometheus-')
  const base = await startPrometheus(t, dir, configWithMetricsToken(dir, token), server)

  t.equal(await query(base, 'up{job="booking"}', v => v === 1), 1, 'the target is up: Prometheus sent the token from credentials_file')
  t.equal(await query(base, 'bookings_total{job="booking",outcome="confirmed"}', v => v === 3), 3, 'confirmed bookings as scraped')
})
