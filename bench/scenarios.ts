/**
 * The scenarios. Each measured run gets a freshly started server process on a
 * fresh database, a warm-up with the same load, then the measured run:
 * - health:  GET /health, the HTTP ceiling of this machine;
 * - hot:     qty-1 bookings on ONE section that never sells out;
 * - hot-noauth: hot again (default batch only) on a server with
 *   AUTH_DISABLED=true, no token sent: what authentication costs;
 * - spread:  the same over 100 sections, round-robin per request;
 * - soldout: a sold-out section hammered (409 is the expected answer);
 * - soldout-nocache: soldout again (default batch only) on a server with
 *   SOLD_OUT_CACHE_MS=0: every request goes to its section's batch, what
 *   the sold-out memory saves;
 * - checkout: holds on one hot section, then confirms of those holds
 *   (bench/checkout.ts), two rows: checkout-hold and checkout-confirm;
 * - onsale: what an on-sale sends to one event of 20 sections, a few of
 *   which sell out during the run: reads, bookings, holds, confirms
 *   (bench/onsale.ts);
 * - opening: qty-1 bookings on one section whose sale opens halfway through
 *   the run: 409 SALE_NOT_OPEN before the opening, 201 after it
 *   (bench/opening.ts);
 * - list / list-user: GET /bookings pages (by event, by event + user) over
 *   bookings seeded through the API (seeding is not measured).
 * hot, spread, onsale and checkout also record the server's CPU per booking, hold or confirm (bench/cpu.ts).
 * Requests authenticate as bench/auth.ts says: an organizer's token creates
 * the events, one service's token books on behalf of the users and lists.
 */
import type autocannon from 'autocannon'
import { BIG_CAPACITY, type BatchName, type BenchOptions, type StoreName } from './options.ts'
import { NO_AUTH, type BenchAuth } from './auth.ts'
import { withUndo } from './cleanup.ts'
import { withCpuCost, type CpuCost } from './cpu.ts'
import { checkViaApi, checkViaSql, combine, type CheckPart, type Expected, type InvariantResult } from './invariants.ts'
import { runLoad, type LoadResult, type LoadSpec } from './load.ts'
import type { OnsalePhaseStats } from './onsale-check.ts'
import type { OnsaleKind } from './onsale-mix.ts'
import type { OpeningStats } from './opening-check.ts'
import { progress } from './progress.ts'
import { createEvent } from '../test/helpers/create-event.ts'
import { benchClient, bookingBody, inheritedEnv, withServer, type Stopped } from './server.ts'
import { redact, type Database, type StoreBackend } from './stores.ts'

export const SPREAD_SECTIONS = 100
/** Seeded bookings are spread over this many users, so a user has listBookings / LIST_USERS of them. */
export const LIST_USERS = 1000
/** Upper bound of the list scenario's seeding, in seconds. */
const SEED_MAX_SECONDS = 900

export type BookingScenario = 'hot' | 'hot-noauth' | 'spread' | 'soldout' | 'soldout-nocache'
/** The two rows of the checkout scenario: its holds, then the confirms of those holds. */
export type CheckoutRow = 'checkout-hold' | 'checkout-confirm'
export type RowScenario = 'health' | BookingScenario | CheckoutRow | 'onsale' | 'opening' | 'list' | 'list-user'
export const BOOKING_SCENARIOS: readonly BookingScenario[] = ['hot', 'hot-noauth', 'spread', 'soldout', 'soldout-nocache']

export function isBookingScenario (scenario: string): scenario is BookingScenario {
  return (BOOKING_SCENARIOS as readonly string[]).includes(scenario)
}

/** Rows whose requests take or sell seats: the booking scenarios, checkout's two, onsale and opening (their 5xx count against the targets). */
export function writesSeats (scenario: string): boolean {
  return isBookingScenario(scenario) || scenario === 'checkout-hold' || scenario === 'checkout-confirm' || scenario === 'onsale' || scenario === 'opening'
}

/**
 * The bookings/s column: 201s per second (bookings, holds; onsale: both), 200s per second for
 * checkout-confirm (confirms), and for opening the 201s per second from the opening to the last answer.
 */
export function writesPerSec (row: Pick<Row, 'scenario' | 'run' | 'opening'>): number | null {
  if (row.run === null || !writesSeats(row.scenario)) return null
  if (row.scenario === 'opening') return row.opening?.run?.after.createdPerSec ?? null
  return row.scenario === 'checkout-confirm' ? count(row.run, 200) / row.run.seconds : row.run.createdPerSec
}

/** The req/s column (and vs health): answers per second, for opening those received before the sale opened (what a not-open answer costs). */
export function reqPerSecOf (row: Pick<Row, 'scenario' | 'run' | 'opening'>): number | null {
  if (row.run === null) return null
  if (row.scenario === 'opening') return row.opening?.run?.before.reqPerSec ?? null
  return row.run.reqPerSec
}

/** The batches a booking scenario runs with: hot-noauth and soldout-nocache are measured next to the default batch only. */
export function batchesOf (scenario: BookingScenario, batches: readonly BatchName[]): BatchName[] {
  return batches.filter(batch => (scenario !== 'hot-noauth' && scenario !== 'soldout-nocache') || batch === 'default')
}

/** A section sold out before the load: 409 is the answer expected. */
function soldOutScenario (scenario: RowScenario): boolean {
  return scenario === 'soldout' || scenario === 'soldout-nocache'
}

export interface Row {
  scenario: RowScenario
  store: StoreName
  /** BATCH_MAX of the server: '1', 'default' (not set, the server's default), '-' when it does not matter */
  batch: BatchName | '-'
  /** what the request path was, e.g. POST /bookings */
  request: string
  /** the statuses a correct server answers in this scenario (5xx are reported apart) */
  expect: number[]
  warmup: LoadResult | null
  run: LoadResult | null
  /** list scenarios: the seeding run */
  seed: LoadResult | null
  /** 201s answered before the warm-up (soldout: the booking that sells the section out) */
  setupCreated: number
  invariant: InvariantResult | null
  /** hot, spread, onsale: the server's CPU over the measured run, per 201 */
  cpu: CpuCost | null
  /** onsale: the mix, and what each phase sent and got on its own event */
  onsale?: { mix: Readonly<Record<OnsaleKind, number>>, warmup: OnsalePhaseStats | null, run: OnsalePhaseStats | null }
  /** opening: per phase, its event's opening and the answers before and after it */
  opening?: { users: number, openingAt: number, nearMs: number, warmup: OpeningStats | null, run: OpeningStats | null }
  server: { env: Record<string, string>, exits: Array<Stopped['exit']> }
  notes: string[]
  /** set when the scenario could not complete */
  error?: string
}

export interface Context {
  opts: BenchOptions
  backend: StoreBackend
  /** the bench run's secret and tokens */
  auth: BenchAuth
}

/** What a correct server answers: 409 only where the section is sold out (onsale: sections sell out during the run; opening: the sale is not open yet). */
export function expectedStatuses (scenario: RowScenario): number[] {
  if (scenario === 'onsale') return [200, 201, 409]
  if (scenario === 'opening') return [201, 409]
  return soldOutScenario(scenario) ? [409] : isBookingScenario(scenario) || scenario === 'checkout-hold' ? [201] : [200]
}

export function newRow (scenario: RowScenario, store: StoreName, batch: BatchName | '-', request: string): Row {
  return { scenario, store, batch, request, expect: expectedStatuses(scenario), warmup: null, run: null, seed: null, setupCreated: 0, invariant: null, cpu: null, server: { env: {}, exits: [] }, notes: [] }
}

/** The server's configuration: the database, its identity settings, LOG_LEVEL=warn, BATCH_MAX=1 or the default, and inherited tuning variables. */
export function serverEnv (db: Database, batch: BatchName | '-', auth: BenchAuth): Record<string, string> {
  return { ...inheritedEnv(), ...db.env, ...auth.env, LOG_LEVEL: 'warn', ...(batch === '1' ? { BATCH_MAX: '1' } : {}) }
}

/** The server's variables as recorded: connection strings without passwords, no secret. */
export function publicEnv (env: Record<string, string>): Record<string, string> {
  const out = { ...env }
  if (out.AUTH_JWT_SECRET !== undefined) out.AUTH_JWT_SECRET = '<random, new each bench run>'
  if (out.DATABASE_URL !== undefined) out.DATABASE_URL = redact(out.DATABASE_URL)
  if (out.REDIS_NODES !== undefined) out.REDIS_NODES = out.REDIS_NODES.split(',').map(redact).join(',')
  return out
}

export function onStopped (row: Row) {
  return (stopped: Stopped): void => {
    row.server.exits.push(stopped.exit)
    if (stopped.exit !== 0) {
      row.notes.push(`server exit ${String(stopped.exit)} after SIGTERM` + (stopped.tail.length > 0 ? `; last output: ${stopped.tail.slice(-3).join(' | ')}` : ''))
    }
  }
}

export function labelOf (row: Pick<Row, 'scenario' | 'store' | 'batch'>): string {
  return `${row.scenario} / ${row.store}${row.batch === '-' ? '' : ` / batch ${row.batch === '1' ? '1' : 'default'}`}`
}

export function count (result: LoadResult | null, status: number): number {
  return result?.status[String(status)] ?? 0
}

/** Answers with status >= 500 (503 BUSY included). */
export function serverErrors (result: LoadResult | null): number {
  if (result === null) return 0
  return Object.entries(result.status).filter(([code]) => Number(code) >= 500).reduce((sum, [, n]) => sum + n, 0)
}

export type Phase = 'warm-up' | 'run'
/** A phase's load; connections default to --connections (a run of `amount` requests may need fewer). */
export type PhaseSpec = Omit<LoadSpec, 'label' | 'duration' | 'connections' | 'pipelining'> & { connections?: number }

/**
 * The warm-up, then the measured run: one spec for both, or one per phase
 * (checkout confirms each phase's own holds; onsale sizes the run's event
 * after the warm-up's rate). `cpu`: read the server's CPU right before and
 * right after the measured run (row.cpu), per answer with `cpuStatus` (201 unless said).
 */
export async function warmAndMeasure (
  ctx: Context, row: Row, spec: PhaseSpec | ((phase: Phase) => PhaseSpec | Promise<PhaseSpec>), { cpu = false, cpuStatus = 201 } = {}
): Promise<void> {
  const { opts } = ctx
  const label = `  ${labelOf(row)}`
  const specOf = async (phase: Phase): Promise<LoadSpec> => {
    const s = typeof spec === 'function' ? await spec(phase) : spec
    const duration = phase === 'run' ? opts.duration : opts.warmup
    progress.log(`  ${phase === 'run' ? 'measuring' : 'warm-up'} ${s.amount === undefined ? `${duration} s` : `${s.amount} requests`}`)
    return { ...s, connections: s.connections ?? opts.connections, pipelining: opts.pipelining, label: `${label}: ${phase === 'run' ? 'measuring' : 'warm-up'}`, duration }
  }
  row.warmup = await runLoad(await specOf('warm-up'))
  const run = await specOf('run')
  if (cpu) {
    const measured = await withCpuCost(run.url, async () => await runLoad(run), cpuStatus)
    row.run = measured.result
    row.cpu = measured.cpu
  } else {
    row.run = await runLoad(run)
  }
  for (const [phase, result] of [['warm-up', row.warmup], ['run', row.run]] as const) {
    if (!result.drained) row.notes.push(`${phase}: no graceful end (autocannon internals changed?): requests in flight were cut off`)
    if (result.errors > 0) row.notes.push(`${phase}: ${result.errors} connection error(s), ${result.timeouts} of them timeouts (no answer in 10 s)`)
    if (result.unanswered > 0) row.notes.push(`${phase}: ${result.unanswered} request(s) without an answer: the booking count is checked as a range`)
  }
}

export async function runHealth (ctx: Context): Promise<Row> {
  const row = newRow('health', ctx.backend.name, '-', 'GET /health')
  const db = await ctx.backend.create()
  await withUndo(db.drop, async () => {
    const env = serverEnv(db, '-', ctx.auth)
    row.server.env = publicEnv(env)
    progress.log('  starting server')
    await withServer(env, async (server) => {
      await warmAndMeasure(ctx, row, { url: server.url, method: 'GET', path: '/health' })
    }, onStopped(row))
  })
  return row
}

export async function runBooking (ctx: Context, scenario: BookingScenario, batch: BatchName): Promise<Row> {
  const auth = scenario === 'hot-noauth' ? NO_AUTH : ctx.auth
  const row = newRow(scenario, ctx.backend.name, batch, `POST /bookings qty 1, ${auth === NO_AUTH ? 'no token' : 'service token'}`)
  const db = await ctx.backend.create()
  await withUndo(db.drop, async () => {
    const env = { ...serverEnv(db, batch, auth), ...(scenario === 'soldout-nocache' ? { SOLD_OUT_CACHE_MS: '0' } : {}) }
    row.server.env = publicEnv(env)
    let eventId = ''
    let expected: Expected = { created: 0, unanswered: 0 }
    let apiPart: CheckPart | undefined
    progress.log('  starting server')
    await withServer(env, async (server) => {
      const sections = scenario === 'spread' ? SPREAD_SECTIONS : 1
      const capacity = soldOutScenario(scenario) ? 1 : BIG_CAPACITY
      const client = benchClient(server.url, auth.service)
      const event = await createEvent(client, new Array<number>(sections).fill(capacity), { name: `bench ${scenario}`, headers: auth.organizer })
      eventId = event.eventId
      const bodies = event.sectionIds.map(id => bookingBody(eventId, id, 'bench-user'))
      if (soldOutScenario(scenario)) {
        const first = await client.request('POST', '/bookings', JSON.parse(bodies[0]))
        if (first.status !== 201) throw new Error(`booking the only seat answered ${first.status}: ${first.text}`)
        row.setupCreated = 1
      }
      if (scenario === 'spread') {
        await warmAndMeasure(ctx, row, { url: server.url, method: 'POST', path: '/bookings', headers: auth.service, requests: roundRobinBookings(bodies) }, { cpu: true })
      } else {
        await warmAndMeasure(ctx, row, { url: server.url, method: 'POST', path: '/bookings', headers: auth.service, body: bodies[0] }, { cpu: scenario === 'hot' })
      }
      expected = {
        created: row.setupCreated + count(row.warmup, 201) + count(row.run, 201),
        unanswered: (row.warmup?.unanswered ?? 0) + (row.run?.unanswered ?? 0)
      }
      if (!soldOutScenario(scenario) && count(row.warmup, 409) + count(row.run, 409) > 0) {
        row.notes.push(`got 409 SOLD_OUT on sections of ${BIG_CAPACITY} seats: this machine outran them`)
      }
      progress.log('  checking invariants (API)')
      apiPart = await checkViaApi(server.url, auth.service, eventId, expected)
    }, onStopped(row))
    progress.log('  checking invariants (SQL on the stored data)')
    const sqlPart = await checkViaSql(db, eventId, expected)
    row.invariant = combine(expected, [apiPart!, sqlPart])
  })
  return row
}

/**
 * Seeds opts.listBookings bookings through the API (one big section, the
 * default batch), checks them, then measures each list query on a freshly
 * started server over the same data.
 */
export async function runList (ctx: Context): Promise<Row[]> {
  const { opts, backend, auth } = ctx
  const db = await backend.create()
  const rows: Row[] = []
  const byEvent = newRow('list', backend.name, '-', 'GET /bookings?eventId&limit=20, service token')
  const byUser = newRow('list-user', backend.name, '-', 'GET /bookings?eventId&userId&limit=20, service token')
  await withUndo(db.drop, async () => {
    const env = serverEnv(db, '-', auth)
    let eventId = ''
    let seed: LoadResult | undefined
    let apiPart: CheckPart | undefined
    const seedRow = newRow('list', backend.name, 'default', '')
    progress.log(`  seeding ${opts.listBookings} bookings through POST /bookings (not measured)`)
    await withServer(env, async (server) => {
      const event = await createEvent(benchClient(server.url, auth.service), [BIG_CAPACITY], { name: 'bench list', headers: auth.organizer })
      eventId = event.eventId
      const sectionId = event.sectionId
      const bodies = Array.from({ length: LIST_USERS }, (_, i) => bookingBody(eventId, sectionId, userOf(i)))
      seed = await runLoad({
        label: `  ${labelOf(byEvent)}: seeding`,
        url: server.url,
        // autocannon refuses more connections than requests
        connections: Math.min(opts.connections, opts.listBookings),
        pipelining: opts.pipelining,
        duration: 0,
        amount: opts.listBookings,
        maxSeconds: SEED_MAX_SECONDS,
        method: 'POST',
        path: '/bookings',
        headers: auth.service,
        requests: roundRobinBookings(bodies)
      })
      const expected = { created: count(seed, 201), unanswered: seed.unanswered }
      progress.log(`  seeded ${expected.created} in ${seed.seconds.toFixed(1)} s (${seed.createdPerSec.toFixed(0)} bookings/s); checking invariants (API)`)
      apiPart = await checkViaApi(server.url, auth.service, eventId, expected)
    }, onStopped(seedRow))
    const expected = { created: count(seed!, 201), unanswered: seed!.unanswered }
    progress.log('  checking invariants (SQL on the stored data)')
    const invariant = combine(expected, [apiPart!, await checkViaSql(db, eventId, expected)])
    const seedNotes = [...seedRow.notes]
    if (count(seed!, 201) < opts.listBookings) seedNotes.push(`seeding got ${count(seed!, 201)} 201s for ${opts.listBookings} requests`)
    const statuses = Object.entries(seed!.status).filter(([code]) => code !== '201')
    if (statuses.length > 0) seedNotes.push(`seeding answers other than 201: ${statuses.map(([c, n]) => `${c}: ${n}`).join(', ')}`)
    if (!seed!.drained) seedNotes.push(`seeding stopped after ${SEED_MAX_SECONDS} s`)
    if (seed!.errors > 0) seedNotes.push(`seeding: ${seed!.errors} connection error(s), ${seed!.timeouts} of them timeouts (no answer in 10 s)`)

    const user = userOf(42)
    for (const [row, path] of [
      [byEvent, `/bookings?eventId=${eventId}&limit=20`],
      [byUser, `/bookings?eventId=${eventId}&userId=${user}&limit=20`]
    ] as const) {
      rows.push(row)
      row.seed = seed!
      row.invariant = invariant
      row.notes.push(...seedNotes)
      row.server.env = publicEnv(env)
      try {
        progress.log(`==> ${labelOf(row)}: ${path.replace(eventId, '<event>')}`)
        progress.log('  starting server')
        await withServer(env, async (server) => {
          await warmAndMeasure(ctx, row, { url: server.url, method: 'GET', path, headers: auth.service })
        }, onStopped(row))
      } catch (err) {
        row.error = err instanceof Error ? err.message : String(err)
      }
    }
  })
  return rows
}

/** POST /bookings with the given bodies in turn, across all connections. */
function roundRobinBookings (bodies: string[]) {
  let next = 0
  return [{
    method: 'POST' as const,
    path: '/bookings',
    headers: { 'content-type': 'application/json' },
    setupRequest: (request: autocannon.Request) => ({ ...request, body: bodies[next++ % bodies.length] })
  }]
}

export function userOf (i: number): string {
  return `bench-user-${String(i).padStart(4, '0')}`
}
