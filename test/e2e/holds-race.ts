/**
 * Holds racing their expiry across real server processes: instances on one
 * PostgreSQL and one Redis, HOLD_TTL_MS=1000, hundreds of holds whose confirms
 * are sent just before and just after expiresAt on random instances. Every
 * hold must end confirmed xor expired, as its confirm was answered, in the API
 * and in the database. Used by holds.test.ts and `npm run test:concurrency`.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { TestContext } from '../helpers/context.ts'
import { createEvent } from '../helpers/create-event.ts'
import { createTestDatabase, withSql } from '../helpers/databases.ts'
import { confirm, countWithStatus, hold } from '../helpers/hold-requests.ts'
import { urlClient, type ApiClient } from '../helpers/http-client.ts'
import { allBookings, checkViaApi, checkViaSql } from '../helpers/invariant.ts'
import { mapLimit } from '../helpers/map-limit.ts'
import { pollUntil } from '../helpers/poll.ts'
import { totalOver } from '../helpers/prometheus-text.ts'
import { startServer } from '../helpers/server-process.ts'
import { REDIS_URL } from '../helpers/services.ts'
import { textTable } from '../helpers/text-table.ts'
import { principals } from '../helpers/tokens.ts'

export const HOLD_TTL_MS = 1000
/** confirms are sent at expiresAt + an offset drawn from this range (ms) */
// early, since a confirm under this load takes a few hundred ms to be decided
const CONFIRM_OFFSET_MS = [-500, 150] as const
/** ISO timestamps carry milliseconds: a stored expiresAt may be up to 1 ms later than the one answered */
const ISO_PRECISION_MS = 1

interface Held { id: string, sectionId: string, qty: number, expiresAt: number }
interface Confirmed { hold: Held, status: number, code?: string, sentAt: number, answeredAt: number, paymentRef: string }

export interface HoldsRaceResult {
  name: string
  holds: number
  soldOut: number
  confirmed200: number
  expired410: number
  confirmedInDb: number
  expiredInDb: number
  heldLeft: number
  /** confirms sent before / after expiresAt (this machine's clock, which is the database's) and their answers */
  landing: { before: Record<string, number>, after: Record<string, number> }
  /** how long making the holds took, and the confirms' latencies (ms): context for the table, not asserted */
  timing: { holdPhaseMs: number, confirmP50Ms: number, confirmMaxMs: number }
  violations: string[]
}

const tally = (statuses: number[]): Record<string, number> =>
  statuses.reduce<Record<string, number>>((m, s) => ({ ...m, [s]: (m[s] ?? 0) + 1 }), {})

export async function holdsRace (t: TestContext, { instances = 3, holds: requests = 300, parallel = 32 } = {}): Promise<HoldsRaceResult> {
  const env = { DATABASE_URL: await createTestDatabase(t), REDIS_NODES: REDIS_URL, HOLD_TTL_MS: String(HOLD_TTL_MS) }
  const servers = await Promise.all(Array.from({ length: instances }, async () => await startServer(env)))
  t.teardown(async () => { await Promise.all(servers.map(async s => await s.stop())) })
  const as = await principals()
  const clients = servers.map(s => urlClient(s.url, { headers: as.service }))
  const anyClient = (): ApiClient => clients[Math.floor(Math.random() * clients.length)]
  // ~450 seats asked of 375: sections sell out while holds are made, and come back by expiry
  const capacities = [50, 75, 100, 150]
  const { eventId, sectionIds } = await createEvent(clients[0], capacities, { name: 'Holds race', headers: as.organizer })
  const violations: string[] = []

  // Each hold's confirm is scheduled as soon as the hold is answered, so confirms land while other holds are made.
  let soldOut = 0
  const confirms: Array<Promise<Confirmed>> = []
  const holdPhase = Date.now()
  await mapLimit(Array.from({ length: requests }, (_, i) => i), parallel, async i => {
    const sectionId = sectionIds[i % sectionIds.length]
    const qty = 1 + (i % 2)
    const res = await hold(clients[i % instances], { eventId, sectionId }, qty, `holder-${i}`)
    if (res.status === 409 && res.body.error?.code === 'SOLD_OUT') {
      soldOut++
      if (!(res.body.error.remaining < qty)) violations.push(`hold ${i}: SOLD_OUT with remaining ${res.body.error.remaining as number} >= qty ${qty}`)
      return
    }
    if (res.status !== 201 || res.body.data?.status !== 'held') {
      violations.push(`hold ${i}: ${res.status} ${res.text.slice(0, 200)}`)
      return
    }
    const held: Held = { id: res.body.data._id, sectionId, qty, expiresAt: Date.parse(res.body.data.expiresAt) }
    confirms.push(confirmAround(anyClient(), held))
  })
  const holdPhaseMs = Date.now() - holdPhase
  const answers = await Promise.all(confirms)
  const latencies = answers.map(a => a.answeredAt - a.sentAt).sort((a, b) => a - b)

  for (const a of answers) {
    const late = a.sentAt > a.hold.expiresAt + ISO_PRECISION_MS
    if (a.status === 200 && late) violations.push(`confirm of ${a.hold.id} sent ${a.sentAt - a.hold.expiresAt} ms after expiresAt answered 200`)
    if (a.status === 410 && a.answeredAt < a.hold.expiresAt) violations.push(`confirm of ${a.hold.id} answered 410 ${a.hold.expiresAt - a.answeredAt} ms before expiresAt`)
    if (a.status === 410 && a.code !== 'HOLD_EXPIRED') violations.push(`confirm of ${a.hold.id}: 410 with code ${a.code ?? '?'}`)
    if (a.status !== 200 && a.status !== 410) violations.push(`confirm of ${a.hold.id}: unexpected ${a.status} ${a.code ?? ''}`)
  }
  const ok = answers.filter(a => a.status === 200)
  const gone = answers.filter(a => a.status === 410)

  // No traffic now: the sweeper alone expires the holds nobody confirmed in time.
  const heldLeft = await pollUntil('no held booking left', async () => {
    const n = await countWithStatus(clients[0], eventId, 'held')
    return n === 0 ? n : undefined
  }, { everyMs: 100 }).catch(async err => {
    violations.push(String(err))
    return await countWithStatus(clients[0], eventId, 'held')
  })

  const metrics = {
    held: await totalOver(servers.map(s => s.url), 'holds_total', { outcome: 'held' }),
    confirmed: await totalOver(servers.map(s => s.url), 'holds_total', { outcome: 'confirmed' }),
    expired: await totalOver(servers.map(s => s.url), 'holds_total', { outcome: 'expired' }),
    expiredSeats: await totalOver(servers.map(s => s.url), 'hold_expired_seats_total'),
    soldOut: await totalOver(servers.map(s => s.url), 'bookings_total', { outcome: 'sold_out' })
  }

  // The API's view: each hold ended as its confirm was answered.
  const listed = new Map((await allBookings(clients[1 % instances], eventId)).map(b => [b._id!, b]))
  const statusOf = new Map<string, string>()
  for (const a of answers) {
    const expected = a.status === 200 ? 'confirmed' : 'expired'
    const status = listed.get(a.hold.id)?.status ?? 'missing'
    statusOf.set(a.hold.id, status)
    if (status !== expected) violations.push(`API: hold ${a.hold.id} answered ${a.status} to its confirm is ${status}`)
  }
  if (listed.size !== answers.length) violations.push(`API lists ${listed.size} bookings, ${answers.length} holds were made`)

  // The database's view, including when a confirmed hold was confirmed.
  const rows = await withSql(env.DATABASE_URL, async sql => await sql.query<{ id: string, status: string, late: boolean | null, payment_ref: string | null }>(
    'SELECT id, status, confirmed_at > expires_at AS late, payment_ref FROM bookings WHERE event_id = $1', [eventId]))
  const stored = new Map(rows.map(r => [r.id, r]))
  for (const a of answers) {
    const row = stored.get(a.hold.id)
    if (a.status === 200 && (row?.status !== 'confirmed' || row.payment_ref !== a.paymentRef || row.late !== false)) {
      violations.push(`SQL: hold ${a.hold.id} confirmed with 200 is ${JSON.stringify(row)}`)
    }
    if (a.status === 410 && row?.status !== 'expired') violations.push(`SQL: hold ${a.hold.id} answered 410 is ${JSON.stringify(row)}`)
  }
  const confirmedInDb = rows.filter(r => r.status === 'confirmed').length
  const expiredInDb = rows.filter(r => r.status === 'expired').length
  const sql = await withSql(env.DATABASE_URL, async sql => await checkViaSql(sql, eventId, { created: answers.length }))
  violations.push(...sql.problems.map(p => `SQL ${p}`))
  const api = await checkViaApi(clients[2 % instances], eventId, { expected: { created: answers.length, ids: answers.map(a => a.hold.id) } })
  violations.push(...api.problems.map(p => `API ${p}`))
  for (const s of api.sections) {
    const sold = ok.filter(a => a.hold.sectionId === s._id).reduce((n, a) => n + a.hold.qty, 0)
    if (s.remaining !== s.capacity - sold) violations.push(`section ${s.name ?? s._id}: remaining ${s.remaining}, expected capacity ${s.capacity} - confirmed ${sold}`)
  }

  // Each instance counted what it did; summed, they match the answers and the database.
  const expiredSeats = rows.filter(r => r.status === 'expired').reduce((n, r) => n + (answers.find(a => a.hold.id === r.id)?.hold.qty ?? 0), 0)
  for (const [name, value, expected] of [
    ['holds_total{held}', metrics.held, answers.length],
    ['holds_total{confirmed}', metrics.confirmed, ok.length],
    ['holds_total{expired}', metrics.expired, expiredInDb],
    ['hold_expired_seats_total', metrics.expiredSeats, expiredSeats],
    ['bookings_total{sold_out}', metrics.soldOut, soldOut]
  ] as const) {
    if (value !== expected) violations.push(`metric ${name} summed over the instances is ${value}, expected ${expected}`)
  }

  violations.push(...await retriesAnswerTheSame(clients, answers))
  violations.push(...await everyInstanceSellsAgain(clients, eventId, api.sections.filter(s => s.remaining >= clients.length).map(s => s._id)))

  const landing = { before: tally(answers.filter(a => a.sentAt <= a.hold.expiresAt).map(a => a.status)), after: tally(answers.filter(a => a.sentAt > a.hold.expiresAt).map(a => a.status)) }
  return {
    name: `${instances} instances on PostgreSQL + Redis: ${requests} holds (qty 1-2, ${capacities.length} sections), HOLD_TTL_MS=${HOLD_TTL_MS}, confirms at expiresAt ${CONFIRM_OFFSET_MS[0]}..+${CONFIRM_OFFSET_MS[1]} ms`,
    holds: answers.length,
    soldOut,
    confirmed200: ok.length,
    expired410: gone.length,
    confirmedInDb,
    expiredInDb,
    heldLeft,
    landing,
    timing: { holdPhaseMs, confirmP50Ms: latencies[Math.floor(latencies.length / 2)] ?? NaN, confirmMaxMs: latencies.at(-1) ?? NaN },
    violations
  }
}

/** Waits until expiresAt + a random offset, then confirms on the given instance. */
async function confirmAround (client: ApiClient, held: Held): Promise<Confirmed> {
  const [lo, hi] = CONFIRM_OFFSET_MS
  const at = held.expiresAt + lo + Math.random() * (hi - lo)
  await sleep(Math.max(0, at - Date.now()))
  const paymentRef = `pay-${held.id}`
  const sentAt = Date.now()
  const res = await confirm(client, held.id, paymentRef)
  return { hold: held, status: res.status, code: res.body.error?.code, sentAt, answeredAt: Date.now(), paymentRef }
}

/** A payment provider's webhook retried after expiry: a confirmed hold answers 200 again, an expired one 410 again. */
async function retriesAnswerTheSame (clients: ApiClient[], answers: Confirmed[]): Promise<string[]> {
  const problems: string[] = []
  await mapLimit(answers, 16, async (a, i) => {
    const res = await confirm(clients[i % clients.length], a.hold.id, a.paymentRef)
    const same = a.status === 200 ? res.status === 200 && res.body.data?.status === 'confirmed' : res.status === 410
    if (!same) problems.push(`retried confirm of ${a.hold.id} (first ${a.status}) answered ${res.status} ${res.text.slice(0, 200)}`)
  })
  return problems
}

/**
 * Sections sold out while holds were made; their seats came back by expiry. Every
 * instance must sell them again (each section with a seat left for each
 * instance), not answer from a stale sold-out memory.
 */
async function everyInstanceSellsAgain (clients: ApiClient[], eventId: string, sectionIds: string[]): Promise<string[]> {
  const problems: string[] = []
  for (const [i, client] of clients.entries()) {
    for (const sectionId of sectionIds) {
      const res = await client.request('POST', '/bookings', { eventId, sectionId, qty: 1, userId: `after-${i}` })
      if (res.status !== 201) problems.push(`after expiry, instance ${i} answered ${res.status} ${res.text.slice(0, 200)} for section ${sectionId}`)
    }
  }
  const check = await checkViaApi(clients[0], eventId)
  return [...problems, ...check.problems.map(p => `API after selling again: ${p}`)]
}

export function formatHoldsRace (r: HoldsRaceResult): string {
  const landing = (m: Record<string, number>): string => Object.entries(m).map(([s, n]) => `${s}: ${n}`).join(', ') || 'none'
  return [
    `== ${r.name}`,
    textTable([
      ['holds', 'confirmed 200', '410 HOLD_EXPIRED', 'confirmed in db', 'expired in db', 'held left', 'invariant'],
      [r.holds, r.confirmed200, r.expired410, r.confirmedInDb, r.expiredInDb, r.heldLeft, r.violations.length === 0 ? 'OK' : 'VIOLATED'].map(String)
    ]),
    `hold requests refused SOLD_OUT: ${r.soldOut}`,
    `confirms sent before expiresAt: ${landing(r.landing.before)}; after: ${landing(r.landing.after)}`,
    `holds made in ${r.timing.holdPhaseMs} ms; confirm latency p50 ${r.timing.confirmP50Ms} ms, max ${r.timing.confirmMaxMs} ms`,
    r.violations.length === 0 ? 'invariants: OK' : `VIOLATIONS (${r.violations.length}):\n  ${r.violations.slice(0, 20).join('\n  ')}`
  ].join('\n')
}
