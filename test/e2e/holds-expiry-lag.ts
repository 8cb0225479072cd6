/**
 * The sweeper's lag with no traffic at all: holds of one seat, one section
 * each, made at spread-out moments so their expiries fall at every phase of
 * the sweeper's tick; then only GET /api/events/:id every ~20 ms, noting when
 * each section's seat is back. Measured, printed, never asserted against a
 * threshold. Used by holds.test.ts and `npm run test:concurrency`.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { TestContext } from '../helpers/context.ts'
import { createEvent, type EventView } from '../helpers/create-event.ts'
import { createTestDatabase, withSql } from '../helpers/databases.ts'
import { countWithStatus, hold } from '../helpers/hold-requests.ts'
import { urlClient } from '../helpers/http-client.ts'
import { checkViaApi, checkViaSql } from '../helpers/invariant.ts'
import { scrapeUrl, total } from '../helpers/prometheus-text.ts'
import { startServer } from '../helpers/server-process.ts'
import { REDIS_URL } from '../helpers/services.ts'
import { textTable } from '../helpers/text-table.ts'
import { principals } from '../helpers/tokens.ts'

const POLL_MS = 20
/** a deadline for a sweeper that never comes, not a measure of lag */
const GIVE_UP_MS = 30_000

export interface ExpiryLagResult {
  name: string
  holds: number
  /** ms from each hold's expiresAt to the first poll answer showing its seat back, ascending */
  lagsMs: number[]
  /** holds whose seat never came back before GIVE_UP_MS */
  neverBack: number
  /** the server's own view: hold_expiry_lag_seconds */
  serverLag: { count: number, meanMs: number }
  sweeps: number
  violations: string[]
}

const quantile = (sorted: number[], q: number): number | undefined => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]

export async function expiryLag (t: TestContext, { holds = 20, spreadMs = 1000 } = {}): Promise<ExpiryLagResult> {
  // EXPIRY_SWEEP_MS left at its default (1000): the lag a deployment gets
  const env = { DATABASE_URL: await createTestDatabase(t), REDIS_NODES: REDIS_URL, HOLD_TTL_MS: '1000' }
  const server = await startServer(env)
  t.teardown(async () => await server.stop())
  const as = await principals()
  const client = urlClient(server.url, { headers: as.service })
  const { eventId, sectionIds } = await createEvent(client, Array(holds).fill(1), { name: 'Expiry lag', headers: as.organizer })
  const violations: string[] = []

  // expiresAt of each section's hold, known once it is answered
  const expiresAt = new Map<string, number>()
  const backAt = new Map<string, number>()
  let holding = true
  const making = (async () => {
    for (const [i, sectionId] of sectionIds.entries()) {
      const res = await hold(client, { eventId, sectionId }, 1, `lag-${i}`)
      if (res.status === 201) expiresAt.set(sectionId, Date.parse(res.body.data.expiresAt))
      else violations.push(`hold ${i}: ${res.status} ${res.text.slice(0, 200)}`)
      await sleep(Math.random() * 2 * spreadMs / holds)
    }
    holding = false
  })()

  const started = Date.now()
  while ((holding || backAt.size < expiresAt.size) && Date.now() - started < GIVE_UP_MS) {
    const sentAt = Date.now()
    // only holds answered before this poll was sent: their seat is gone until it comes back
    const pending = [...expiresAt.keys()].filter(id => !backAt.has(id))
    const res = await client.request<EventView>('GET', `/api/events/${eventId}`)
    const answeredAt = Date.now()
    if (res.status !== 200) throw new Error(`GET /api/events answered ${res.status}: ${res.text}`)
    for (const s of res.body.data!.sections) {
      if (pending.includes(s._id) && s.remaining === s.capacity) backAt.set(s._id, answeredAt)
    }
    await sleep(Math.max(0, sentAt + POLL_MS - Date.now()))
  }
  await making

  const lagsMs = [...backAt].map(([id, at]) => at - expiresAt.get(id)!).sort((a, b) => a - b)
  const metrics = await scrapeUrl(server.url)
  const count = total(metrics, 'hold_expiry_lag_seconds_count')
  const expired = total(metrics, 'holds_total', { outcome: 'expired' })
  if (expired !== expiresAt.size) violations.push(`holds_total{expired} is ${expired}, ${expiresAt.size} holds expired`)
  const stillHeld = await countWithStatus(client, eventId, 'held')
  if (stillHeld !== 0) violations.push(`${stillHeld} bookings still held`)
  violations.push(...(await checkViaApi(client, eventId, { expected: { created: expiresAt.size } })).problems.map(p => `API ${p}`))
  violations.push(...(await withSql(env.DATABASE_URL, async sql => await checkViaSql(sql, eventId))).problems.map(p => `SQL ${p}`))
  return {
    name: `expiry lag with no traffic: ${holds} holds of 1 seat, HOLD_TTL_MS=1000, EXPIRY_SWEEP_MS default (1000), polled every ${POLL_MS} ms`,
    holds: expiresAt.size,
    lagsMs,
    neverBack: expiresAt.size - backAt.size,
    serverLag: { count, meanMs: count === 0 ? NaN : Math.round(total(metrics, 'hold_expiry_lag_seconds_sum') / count * 1000) },
    sweeps: total(metrics, 'expiry_sweeps_total'),
    violations
  }
}

export function formatExpiryLag (r: ExpiryLagResult): string {
  const l = r.lagsMs
  const ms = (v: number | undefined): string => v === undefined ? '-' : `${v}`
  return [
    `== ${r.name}`,
    textTable([
      ['holds', 'back', 'never back', 'min ms', 'p50 ms', 'p90 ms', 'max ms', 'server mean ms', 'sweeps'],
      [r.holds, l.length, r.neverBack, ms(l[0]), ms(quantile(l, 0.5)), ms(quantile(l, 0.9)), ms(l.at(-1)), r.serverLag.meanMs, r.sweeps].map(String)
    ]),
    `lag = first poll answer showing the seat back - expiresAt (resolution ~${POLL_MS} ms + one GET)`,
    r.violations.length === 0 ? 'invariants: OK' : `VIOLATIONS (${r.violations.length}):\n  ${r.violations.slice(0, 20).join('\n  ')}`
  ].join('\n')
}
