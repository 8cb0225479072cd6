/**
 * Concurrency scenarios against real server processes and real HTTP: the
 * seed's 20-for-5 race, and several instances sharing PostgreSQL and Redis.
 * Used by `npm run test:concurrency` (prints tables) and concurrency.test.ts.
 */
import pg from 'pg'
import { scrapeUrl, total } from '../helpers/prometheus-text.ts'
import { tempDataDir } from '../helpers/build-app.ts'
import { startServer, type ServerProcess } from '../helpers/server-process.ts'
import { createTestDatabase, REDIS_URL } from '../helpers/services.ts'

interface TestContext { teardown: (fn: () => unknown) => void }

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

async function post (url: string, body: unknown): Promise<{ status: number, body: any }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  return { status: res.status, body: await res.json() }
}

async function createEvent (server: ServerProcess, capacities: number[]) {
  const { status, body } = await post(`${server.url}/api/events`, {
    name: 'Concurrency', sections: capacities.map((capacity, i) => ({ name: `S${i}`, price: 10, capacity }))
  })
  if (status !== 201) throw new Error(`create event: ${status} ${JSON.stringify(body)}`)
  return body.data as { _id: string, sections: Array<{ _id: string, name: string, capacity: number }> }
}

/** Runs `jobs` with at most `parallel` in flight. */
async function pool<T> (jobs: Array<() => Promise<T>>, parallel: number): Promise<T[]> {
  const out: T[] = new Array(jobs.length)
  let next = 0
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (next < jobs.length) {
      const i = next++
      out[i] = await jobs[i]()
    }
  }))
  return out
}

async function allBookings (server: ServerProcess, eventId: string): Promise<Array<{ _id: string, sectionId: string, qty: number, status: string }>> {
  const items = []
  for (let page = 1; ; page++) {
    const res = await fetch(`${server.url}/bookings?eventId=${eventId}&limit=100&page=${page}`)
    const { data } = await res.json() as { data: { items: any[] } }
    items.push(...data.items)
    if (data.items.length < 100) return items
  }
}

/** Checks the invariants of DESIGN.md over what the API says now and what each request was answered. */
async function verify (name: string, server: ServerProcess, eventId: string, answers: Answer[], extra: string[] = []): Promise<ScenarioResult> {
  const violations = [...extra]
  const event = (await (await fetch(`${server.url}/api/events/${eventId}`)).json()).data
  const bookings = await allBookings(server, eventId)
  const stored = new Set(bookings.map(b => b._id))
  const statuses: Record<string, number> = {}
  for (const a of answers) {
    statuses[a.status] = (statuses[a.status] ?? 0) + 1
    if (a.status === 201 && !stored.has(a.body.data._id)) violations.push(`201 booking ${a.body.data._id} is not stored`)
    if (a.status === 409 && !(a.body.error.remaining < a.qty)) violations.push(`409 with remaining ${a.body.error.remaining} >= qty ${a.qty}: false sold-out`)
    if (a.status !== 201 && a.status !== 409) violations.push(`unexpected ${a.status}: ${JSON.stringify(a.body)}`)
  }
  const confirmedAnswers = answers.filter(a => a.status === 201).length
  if (bookings.length !== confirmedAnswers) violations.push(`${bookings.length} bookings stored but ${confirmedAnswers} answered 201`)
  const sections: SectionRow[] = event.sections.map((s: { _id: string, name: string, capacity: number, remaining: number }) => {
    const soldSeats = bookings.filter(b => b.sectionId === s._id && b.status === 'confirmed').reduce((n, b) => n + b.qty, 0)
    if (s.remaining < 0) violations.push(`${s.name}: remaining ${s.remaining} < 0`)
    if (s.capacity !== s.remaining + soldSeats) violations.push(`${s.name}: capacity ${s.capacity} != remaining ${s.remaining} + sold ${soldSeats}`)
    const mine = answers.filter(a => a.sectionId === s._id)
    return {
      section: s.name,
      capacity: s.capacity,
      remaining: s.remaining,
      soldSeats,
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
  const event = await createEvent(server, [5])
  const sectionId = event.sections[0]._id
  const answers = await Promise.all(Array.from({ length: 20 }, async (_, i) => {
    const res = await post(`${server.url}/bookings`, { eventId: event._id, sectionId, qty: 1, userId: `user-${i}` })
    return { ...res, sectionId, qty: 1 }
  }))
  const result = await verify('seed race: 20 users, 5 seats', server, event._id, answers)
  const created = result.statuses['201'] ?? 0
  const soldOut = result.statuses['409'] ?? 0
  if (created !== 5 || soldOut !== 15) result.violations.push(`expected 5×201 and 15×409, got ${created}×201 and ${soldOut}×409`)
  if (result.sections[0].remaining !== 0) result.violations.push(`remaining ${result.sections[0].remaining}, expected 0`)
  return result
}

export const embeddedEnv = (t: TestContext) => ({ DATA_DIR: tempDataDir(t) })

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
  const event = await createEvent(servers[0], capacities)
  const jobs = Array.from({ length: requests }, (_, i) => async (): Promise<Answer> => {
    const server = servers[i % instances]
    const sectionId = event.sections[i % capacities.length]._id
    const qty = 1 + (i * 7) % 4
    const res = await post(`${server.url}/bookings`, { eventId: event._id, sectionId, qty, userId: `user-${i}` })
    return { ...res, sectionId, qty }
  })
  const answers = await pool(jobs, parallel)

  // The database itself, not only the API, must agree.
  const extra: string[] = []
  const db = new pg.Client({ connectionString: env.DATABASE_URL })
  await db.connect()
  try {
    const { rows } = await db.query(`SELECT s.name, s.capacity, s.remaining, coalesce(sum(b.qty) FILTER (WHERE b.status = 'confirmed'), 0)::int AS sold
      FROM sections s LEFT JOIN bookings b ON b.section_id = s.id WHERE s.event_id = $1 GROUP BY s.id`, [event._id])
    for (const r of rows) if (r.capacity !== r.remaining + r.sold) extra.push(`SQL ${r.name}: ${r.capacity} != ${r.remaining} + ${r.sold}`)
  } finally {
    await db.end()
  }
  const result = await verify(`${instances} instances on PostgreSQL + Redis: ${requests} requests, qty 1-4, 10 sections`, servers[1 % instances], event._id, answers, extra)
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
