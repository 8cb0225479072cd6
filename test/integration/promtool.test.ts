/**
 * promtool, the Prometheus project's own checker, on what we ship: the /metrics
 * exposition after real traffic, prometheus.yml, the alert rules of
 * docs/metrics.md and every query of the Grafana dashboard.
 */
import { spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { buildApp } from '../helpers/build-app.ts'
import { createEvent } from '../helpers/create-event.ts'
import { tempDataDir } from '../helpers/databases.ts'
import { injectAs, injectClient } from '../helpers/http-client.ts'
import { configWithMetricsToken } from '../helpers/prometheus-config.ts'
import { storeSetup } from '../helpers/store-setups.ts'
import { principals } from '../helpers/tokens.ts'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

const promtoolFound = spawnSync('promtool', ['--version'], { encoding: 'utf8' })
const skip = promtoolFound.error !== undefined ? 'promtool not installed: apt-get install prometheus' : undefined
if (skip !== undefined) console.log(`# SKIPPED promtool checks: ${skip}`)

function promtool (args: string[], input?: string): { status: number | null, output: string } {
  const result = spawnSync('promtool', args, { input, encoding: 'utf8', cwd: ROOT })
  if (result.error !== undefined) throw result.error
  return { status: result.status, output: `${result.stdout}${result.stderr}`.trim() }
}

t.test('promtool check metrics accepts /metrics after bookings', { skip }, async t => {
  const app = await buildApp(t, await storeSetup('embedded').env(t))
  // an organizer creates the event; a service books on behalf of the users
  const as = await principals()
  const created = await createEvent(injectClient(app, as.organizer), [3, 100], { name: 'Lint me', price: [10, 20], sectionNames: ['A', 'B'] })
  t.equal(created.status, 201)
  const event = created.event
  const [a, b] = created.sectionIds
  const statuses = await Promise.all(Array.from({ length: 8 }, async (_, i) => (await injectAs(app, as.service, {
    method: 'POST',
    url: '/bookings',
    payload: { eventId: event._id, sectionId: i % 2 === 0 ? a : b, qty: 1, userId: `lint-${i}` }
  })).statusCode))
  t.same(statuses.filter(s => s !== 201 && s !== 409), [], 'only 201 and 409')
  t.equal((await injectAs(app, as.service, { method: 'POST', url: '/bookings', payload: { eventId: event._id } })).statusCode, 400)
  t.equal((await app.inject({ method: 'GET', url: `/api/events/${event._id}` })).statusCode, 200)
  t.equal((await app.inject({ method: 'GET', url: '/nowhere' })).statusCode, 404)

  const res = await app.inject({ method: 'GET', url: '/metrics' })
  t.equal(res.statusCode, 200)
  // promtool passes an empty input: make sure there is something to check
  t.match(res.body, /^bookings_total\{outcome="confirmed"\} [1-9]/m, 'the exposition has booking samples')
  t.match(res.body, /^http_request_duration_seconds_bucket\{.*route="\/api\/events\/:id"/m, 'and HTTP samples')

  const { status, output } = promtool(['check', 'metrics'], res.body)
  t.equal(status, 0, `promtool accepts the exposition: ${output}`)
  t.equal(output.trim(), '', 'no lint problem')
})

t.test('promtool check config accepts prometheus.yml', { skip }, async t => {
  const { status, output } = promtool(['check', 'config', 'prometheus.yml'])
  t.equal(status, 0, output)
  t.match(output, /SUCCESS/)
  const config = readFileSync(join(ROOT, 'prometheus.yml'), 'utf8')
  t.match(config, /job_name: booking/)
  t.match(config, /metrics_path: \/metrics/)
  t.match(config, /host\.docker\.internal:3000/)
})

t.test('promtool check config accepts prometheus.yml with its authorization block uncommented (METRICS_TOKEN set)', { skip }, async t => {
  const dir = tempDataDir(t, 'booking-promtool-')
  const config = configWithMetricsToken(dir, 'metrics-token-0123456789abcdef')
  t.match(config, /^ {4}authorization:\n {6}type: Bearer\n {6}credentials_file: "[^"]+metrics-token"$/m, 'the block is uncommented, pointing at the token file')
  const file = join(dir, 'prometheus.yml')
  writeFileSync(file, config)
  // promtool also checks that the credentials file exists
  const { status, output } = promtool(['check', 'config', file])
  t.equal(status, 0, output)
  t.match(output, /SUCCESS/)
})

t.test('promtool check rules accepts the alerts of docs/metrics.md', { skip }, async t => {
  const docs = readFileSync(join(ROOT, 'docs/metrics.md'), 'utf8')
  const block = /```yaml\n(groups:[\s\S]*?)```/.exec(docs)?.[1]
  t.ok(block, 'docs/metrics.md has a rules block')
  if (block === undefined) return
  const file = join(tempDataDir(t, 'booking-promtool-'), 'alerts.yml')
  writeFileSync(file, block)
  const { status, output } = promtool(['check', 'rules', file])
  t.equal(status, 0, output)
  t.match(output, /SUCCESS: [1-9]\d* rules found/)
})

t.test('every query of the Grafana dashboard is valid PromQL', { skip }, async t => {
  const dashboard = JSON.parse(readFileSync(join(ROOT, 'grafana/dashboards/booking.json'), 'utf8'))
  const exprs: string[] = dashboard.panels.flatMap((p: { targets?: Array<{ expr: string }> }) => (p.targets ?? []).map(q => q.expr))
  t.ok(exprs.length >= 8, `${exprs.length} queries`)
  // Grafana's interval variables become plain durations; each query becomes a recording rule
  const rules = exprs.map((expr, i) => ({
    record: `dashboard:query_${i}`,
    expr: expr.replaceAll('$__rate_interval', '1m').replaceAll('$__interval', '15s').replaceAll('$__range', '1h')
  }))
  t.same(rules.filter(r => r.expr.includes('$')), [], 'no other Grafana variable is used')
  const file = join(tempDataDir(t, 'booking-promtool-'), 'dashboard-rules.yml')
  // JSON is YAML
  writeFileSync(file, JSON.stringify({ groups: [{ name: 'dashboard', rules }] }, null, 2))
  const { status, output } = promtool(['check', 'rules', file])
  t.equal(status, 0, output)
  t.match(output, new RegExp(`SUCCESS: ${rules.length} rules found`))
})
