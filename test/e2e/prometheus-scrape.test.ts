/**
 * A real Prometheus server (Debian's `prometheus` package, installed by
 * .ci/run) scrapes a real server process, using the job of prometheus.yml
 * pointed at the test's port; the samples it stores must match what happened.
 */
import { spawn, spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { createEvent } from '../helpers/create-event.ts'
import { tempDataDir } from '../helpers/databases.ts'
import { urlClient } from '../helpers/http-client.ts'
import { freePort, startServer } from '../helpers/server-process.ts'

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

t.test('Prometheus scrapes /metrics and stores the booking counters', { skip: missing }, async t => {
  const server = await startServer({ DATA_DIR: tempDataDir(t) })
  t.teardown(async () => await server.stop())

  const client = urlClient(server.url)
  const { eventId, sectionId } = await createEvent(client, [3], { name: 'Scraped', price: 1, sectionNames: ['A'] })
  const statuses = await Promise.all(Array.from({ length: 5 }, async (_, i) =>
    (await client.request('POST', '/bookings', { eventId, sectionId, qty: 1, userId: `p${i}` })).status))
  t.same(statuses.sort(), [201, 201, 201, 409, 409])

  // the shipped job, aimed at this test's server instead of host.docker.internal:3000
  const dir = tempDataDir(t, 'booking-prometheus-')
  const config = readFileSync('prometheus.yml', 'utf8')
    .replace('host.docker.internal:3000', new URL(server.url).host)
    .replace(/scrape_interval: \d+s/g, 'scrape_interval: 1s')
  writeFileSync(join(dir, 'prometheus.yml'), config)
  const port = await freePort()
  const prometheus = spawn('prometheus', [
    `--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`
  ], { stdio: 'ignore' })
  t.teardown(() => { prometheus.kill('SIGKILL') })
  const base = `http://127.0.0.1:${port}`

  t.equal(await query(base, 'up{job="booking"}', v => v === 1), 1, 'the target is up')
  t.equal(await query(base, 'bookings_total{job="booking",outcome="confirmed"}', v => v === 3), 3, 'confirmed bookings as scraped')
  t.equal(await query(base, 'bookings_total{job="booking",outcome="sold_out"}', v => v === 2), 2, 'sold out as scraped')
  t.equal(await query(base, 'sum(http_request_duration_seconds_count{job="booking",route="/bookings"})', v => v === 5), 5, 'HTTP histogram by route pattern')
})
