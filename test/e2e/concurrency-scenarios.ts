/**
 * Concurrency scenarios against real server processes and real HTTP: the
 * seed's 20-for-5 race, and several instances sharing PostgreSQL and Redis.
 * Used by `npm run test:concurrency` (prints tables) and concurrency.test.ts.
 * Requests authenticate as real clients do: an organizer creates the event,
 * one service token (a box office) books on behalf of every user and lists
 * the bookings for the checks.
 */
import type { TestContext } from '../helpers/context.ts'
import { createEvent } from '../helpers/create-event.ts'
import { createTestDatabase, pgliteDataDir, withSql } from '../helpers/databases.ts'
import { urlClient, type ApiClient } from '../helpers/http-client.ts'
import { checkViaApi, checkViaSql } from '../helpers/invariant.ts'
import { mapLimit } from '../helpers/map-limit.ts'
import { scrapeUrl, total } from '../helpers/prometheus-text.ts'
import { startServer, type ServerProcess } from '../helpers/server-process.ts'
import { REDIS_URL } from '../helpers/services.ts'
import { principals } from '../helpers/tokens.ts'

export interface SectionRow {
  section: string
  capacity: number
  remaining: number
  soldSeats: number
  created: number
  soldOut: number
  other: number
}

export interface ScenarioResult {
  name: string
  requests: number
  statuses: Record<string, number>
  sections: SectionRow[]
  /** every broken promise found, empty when all invariants hold */
  violations: string[]
  /** service metrics summed over the instances, after the run */
  metrics?: Record<string, number>
}

interface Answer { status: number, body: any, sectionId: string, qty: number }

const CONCURRENCY_EVENT = { name: 'Concurrency' }

async function book (client: ApiClient, eventId: string, sectionId: string, qty: number, userId: string): Promise<Answer> {
  const { status, body } = await client.request('POST', '/bookings', { eventId, sectionId, qty, userId })
  return { status, body, sectionId, qty }
}

/** Checks the invariants of DESIGN.md over what the API says now and what each request was answered. */
async function verify (name: string, client: ApiClient, eventId: string, answers: Answer[], extra: string[] = []): Promise<ScenarioResult> {
  const violations = [...extra]
  const statuses: Record<string, number> = {}
  for (const a of answers) {
    statuses[a.status] = (statuses[a.status] ?? 0) + 1
    if (a.status === 409 && !(a.body.error.remaining < a.qty)) violations.push(`409 with remaining ${a.body.error.remaining} >= qty ${a.qty}: false sold-out`)
    if (a.status !== 201 && a.status !== 409) violations.push(`unexpected ${a.status}: ${JSON.stringify(a.body)}`)
  }
  const ids = answers.filter(a => a.status === 201).map(a => a.body.data._id as string)
  const check = await checkViaApi(client, eventId, { expected: { created: ids.length, ids } })
  violations.push(...check.problems)
  const sections: SectionRow[] = check.sections.map(s => {
    const mine = answers.filter(a => a.sectionId === s._id)
    return {
      section: s.name ?? s._id,
      capacity: s.capacity,
      remaining: s.remaining,
      soldSeats: s.soldSeats,
      created: mine.filter(a => a.status === 201).length,
      soldOut: mine.filter(a => a.status === 409).length,
      other: mine.filter(a => a.status !== 201 && a.status !== 409).length
    }
  })
  return { name, requests: answers.length, statuses, sections, violations }
}

/** The seed's case: 20 users race for 5 seats on one server. */
export async function seedRace (t: TestContext, env: Record<string, string>): Promise<ScenarioResult> {
  const server = await startServer(env)
  t.teardown(async () => await server.stop())
  const as = await principals()
  const client = urlClient(server.url, { headers: as.service })
  const { eventId, sectionId } = await createEvent(client, [5], { ...CONCURRENCY_EVENT, headers: as.organizer })
  const answers = await Promise.all(Array.from({ length: 20 }, async (_, i) => await book(client, eventId, sectionId, 1, `user-${i}`)))
  const result = await verify('seed race: 20 users, 5 seats', client, eventId, answers)
  const created = result.statuses['201'] ?? 0
  const soldOut = result.statuses['409'] ?? 0
  if (created !== 5 || soldOut !== 15) result.violations.push(`expected 5×201 and 15×409, got ${created}×201 and ${soldOut}×409`)
  if (result.sections[0].remaining !== 0) result.violations.push(`remaining ${result.sections[0].remaining}, expected 0`)
  return result
}

export const embeddedEnv = async (t: TestContext): Promise<Record<string, string>> => ({ DATA_DIR: await pgliteDataDir(t) })

/**
 * Several instances sharing PostgreSQL and Redis: `requests` bookings of qty 1..4
 * over 10 sections, spread round-robin over the instances.
 */
export async function multiInstance (t: TestContext, { instances = 3, requests = 2400, parallel = 64 } = {}): Promise<ScenarioResult> {
  const env = { DATABASE_URL: await createTestDatabase(t), REDIS_NODES: REDIS_URL }
  const servers = await Promise.all(Array.from({ length: instances }, async () => await startServer(env)))
  t.teardown(async () => { await Promise.all(servers.map(async s => await s.stop())) })
  // capacities below and above the demand each section will see (~600 seats), so some sell out
  const capacities = [50, 100, 200, 300, 400, 500, 700, 900, 1200, 2000]
  const as = await principals()
  const clients = servers.map(s => urlClient(s.url, { headers: as.service }))
  const { eventId, sectionIds } = await createEvent(clients[0], capacities, { ...CONCURRENCY_EVENT, headers: as.organizer })
  const answers = await mapLimit(Array.from({ length: requests }, (_, i) => i), parallel, async i =>
    await book(clients[i % instances], eventId, sectionIds[i % capacities.length], 1 + (i * 7) % 4, `user-${i}`))
  const created = answers.filter(a => a.status === 201).length

  // The database itself, not only the API, must agree.
  const sql = await withSql(env.DATABASE_URL, async sql => await checkViaSql(sql, eventId, { created }))
  const result = await verify(`${instances} instances on PostgreSQL + Redis: ${requests} requests, qty 1-4, 10 sections`, clients[1 % instances], eventId, answers,
    sql.problems.map(p => `SQL ${p}`))
  result.metrics = await metricsOf(servers)
  const seats = answers.filter(a => a.status === 201).reduce((n, a) => n + a.qty, 0)
  for (const [metric, expected] of [
    ['bookings_total{confirmed}', result.statuses['201'] ?? 0],
    ['bookings_total{sold_out}', result.statuses['409'] ?? 0],
    ['booked_seats_total', seats]
  ] as const) {
    if (result.metrics[metric] !== expected) result.violations.push(`metric ${metric} is ${result.metrics[metric]}, the answers say ${expected}`)
  }
  return result
}

/** What an operator would read off the instances' /metrics after the run. */
async function metricsOf (servers: ServerProcess[]): Promise<Record<string, number>> {
  const scraped = await Promise.all(servers.map(async s => await scrapeUrl(s.url)))
  const sum = (name: string, labels: Record<string, string> = {}) => scraped.reduce((n, e) => n + total(e, name, labels), 0)
  return {
    'bookings_total{confirmed}': sum('bookings_total', { outcome: 'confirmed' }),
    'bookings_total{sold_out}': sum('bookings_total', { outcome: 'sold_out' }),
    'bookings_total{busy}': sum('bookings_total', { outcome: 'busy' }),
    'bookings_total{denied}': sum('bookings_total', { outcome: 'denied' }),
    'bookings_total{error}': sum('bookings_total', { outcome: 'error' }),
    booked_seats_total: sum('booked_seats_total'),
    'booking_batch_size count': sum('booking_batch_size_count'),
    'booking_batch_size sum': sum('booking_batch_size_sum'),
    'lock_acquire_seconds count': sum('lock_acquire_seconds_count'),
    'lock_acquire_seconds sum': Math.round(sum('lock_acquire_seconds_sum') * 1000) / 1000,
    lock_failures_total: sum('lock_failures_total'),
    'store_transaction_seconds{book} count': sum('store_transaction_seconds_count', { operation: 'book' }),
    store_transaction_retries_total: sum('store_transaction_retries_total'),
    store_errors_total: sum('store_errors_total'),
    'http_request_duration_seconds{POST /bookings} count': sum('http_request_duration_seconds_count', { method: 'POST', route: '/bookings' })
  }
}

export function formatResult (r: ScenarioResult): string {
  const head = ['section', 'capacity', 'sold', 'remaining', '201', '409', 'other']
  const rows = r.sections.map(s => [s.section, s.capacity, s.soldSeats, s.remaining, s.created, s.soldOut, s.other].map(String))
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map(row => row[i].length)))
  const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i])).join('  ')
  return [
    `== ${r.name}`,
    `requests ${r.requests}; answers ${Object.entries(r.statuses).map(([s, n]) => `${s}: ${n}`).join(', ')}`,
    line(head),
    ...rows.map(line),
    ...(r.metrics === undefined ? [] : ['metrics, summed over the instances:', ...Object.entries(r.metrics).map(([k, v]) => `  ${k} ${v}`)]),
    r.violations.length === 0 ? 'invariants: OK' : `VIOLATIONS (${r.violations.length}):\n  ${r.violations.slice(0, 20).join('\n  ')}`
  ].join('\n')
}
