/**
 * The opening scenario: a sale that opens while it is hammered. One freshly
 * started server, one event with one section of BIG_CAPACITY seats (never
 * sold out) whose salesStart comes after the warm-up and halfway through the
 * measured run (OPENING_AT): the warm-up is all before the opening, as
 * soldout's is all sold out, so the answers from memory are warm when
 * measured. Every connection sends qty-1 POST /bookings with the service
 * token, for OPENING_USERS users in turn, from before the opening to after it.
 *
 * Before the opening the answer is 409 SALE_NOT_OPEN: from the service's
 * memory while it is certain the opening is well ahead, from the database
 * (whose clock decides) in the last OPENING_MARGIN_MS. So the rate before the
 * opening is what a not-open answer costs, beside soldout's sold-out one; the
 * rate after it is bookings/s; and the first 201 says how soon the sale
 * really opened (bench/opening-check.ts).
 */
import type autocannon from 'autocannon'
import { performance } from 'node:perf_hooks'
import { OPENING_MARGIN_MS } from '../lib/service/booking-service.ts'
import type { ApiClient } from '../test/helpers/http-client.ts'
import { BIG_CAPACITY, type BatchName } from './options.ts'
import { withUndo } from './cleanup.ts'
import { checkViaApi, checkViaSql, combine, type CheckPart, type Expected } from './invariants.ts'
import type { LoadResult } from './load.ts'
import {
  markSent, newOpeningPhase, NOT_OPEN, OPENING_AT, openingProblems, openingStats, recordOpeningAnswer, salesStartFor, type OpeningPhase
} from './opening-check.ts'
import { progress } from './progress.ts'
import { benchClient, bookingBody, withServer } from './server.ts'
import type { Database } from './stores.ts'
import { newRow, onStopped, publicEnv, serverEnv, userOf, warmAndMeasure, type Context, type Phase, type Row } from './scenarios.ts'

/** Bookings go to these users in turn (the service books on their behalf). */
export const OPENING_USERS = 10_000

/** What a connection's request in flight was sent at (autocannon keeps one context per connection). */
interface RequestContext { sentMs?: number, sentAt?: number }

/** Bookings for each user in turn; each answer is placed against the opening by when it arrived. */
function openingRequests (phase: OpeningPhase, bodies: string[]): autocannon.Request[] {
  let next = 0
  return [{
    method: 'POST',
    path: '/bookings',
    headers: { 'content-type': 'application/json' },
    setupRequest: (request: autocannon.Request, context: object) => {
      const ctx = context as RequestContext
      // the wall clock, as the database's salesStart; latency from the monotonic one
      ctx.sentMs = Date.now()
      ctx.sentAt = performance.now()
      markSent(phase, ctx.sentMs)
      return { ...request, body: bodies[next++ % bodies.length] }
    },
    onResponse: (status: number, body: string, context: object) => {
      const { sentMs, sentAt } = context as RequestContext
      if (sentMs === undefined || sentAt === undefined) return
      recordOpeningAnswer(phase, { sentMs, receivedMs: Date.now(), latencyMs: performance.now() - sentAt }, status, body)
    }
  }]
}

interface OpeningEvent { eventId: string, sectionId: string, salesStartMs: number }

/** An event of one big section whose sale opens at salesStartMs; refused unless the API says it is not open yet. */
async function createOpeningEvent (client: ApiClient, headers: Record<string, string>, salesStartMs: number): Promise<OpeningEvent> {
  const salesStart = new Date(salesStartMs).toISOString()
  const res = await client.request<{ _id: string, sections: Array<{ _id: string }>, salesStart?: string, saleState?: string }>('POST', '/api/events', {
    name: 'bench opening', sections: [{ name: 'S0', price: 10, capacity: BIG_CAPACITY }], salesStart
  }, headers)
  const event = res.status === 201 ? res.body.data : undefined
  if (event === undefined) throw new Error(`POST /api/events answered ${res.status}: ${res.text}`)
  if (event.salesStart === undefined || Date.parse(event.salesStart) !== salesStartMs) throw new Error(`the event was created with salesStart ${String(event.salesStart)}, not ${salesStart}`)
  if (event.saleState !== 'not_open') throw new Error(`the event, opening at ${salesStart}, was created ${String(event.saleState)} (expected not_open)`)
  return { eventId: event._id, sectionId: event.sections[0]._id, salesStartMs }
}

/** The 201s of both phases (the warm-up's are wrong, and checked as such), and the requests left unanswered. */
function expectedOf (results: Array<LoadResult | null>): Expected {
  return {
    created: results.reduce((n, r) => n + (r?.status['201'] ?? 0), 0),
    unanswered: results.reduce((n, r) => n + (r?.unanswered ?? 0), 0)
  }
}

/** In SQL, on the stored data: no booking of the event (answered or not) created before its salesStart. */
async function createdBeforeViaSql (db: Database, event: OpeningEvent): Promise<string[]> {
  const salesStart = new Date(event.salesStartMs).toISOString()
  try {
    return await db.withSql(async sql => {
      const [row] = await sql.query<{ n: number, first: string | null }>(
        'SELECT count(*)::int AS n, min(created_at)::text AS first FROM bookings WHERE event_id = $1 AND created_at < $2::timestamptz',
        [event.eventId, salesStart])
      return row.n === 0 ? [] : [`${row.n} stored booking(s) created before salesStart ${salesStart} (the first at ${String(row.first)})`]
    })
  } catch (err) {
    return [`createdAt check: ${err instanceof Error ? err.message : String(err)}`]
  }
}

export async function runOpening (ctx: Context, batch: BatchName): Promise<Row> {
  const { opts, backend, auth } = ctx
  const row = newRow('opening', backend.name, batch,
    `POST /bookings qty 1, ${OPENING_USERS} users, service token; one section of ${BIG_CAPACITY} seats whose sale opens ${OPENING_AT * 100}% into the run`)
  const db = await backend.create()
  await withUndo(db.drop, async () => {
    const env = serverEnv(db, batch, auth)
    row.server.env = publicEnv(env)
    const phases: Partial<Record<Phase, OpeningPhase>> = {}
    let event: OpeningEvent | undefined
    let apiPart: CheckPart | undefined
    progress.log('  starting server')
    await withServer(env, async (server) => {
      const client = benchClient(server.url, auth.service)
      const opening = event = await createOpeningEvent(client, auth.organizer, salesStartFor(Date.now(), opts.warmup, opts.duration))
      progress.log(`  event: one section of ${BIG_CAPACITY} seats, on sale from ${new Date(opening.salesStartMs).toISOString()} ` +
        `(in ${((opening.salesStartMs - Date.now()) / 1000).toFixed(1)} s: the warm-up, then ${OPENING_AT * 100}% of the run)`)
      const bodies = Array.from({ length: OPENING_USERS }, (_, i) => bookingBody(opening.eventId, opening.sectionId, userOf(i)))
      await warmAndMeasure(ctx, row, label => {
        const phase = phases[label] = newOpeningPhase(opening.eventId, opening.salesStartMs, OPENING_MARGIN_MS)
        return { url: server.url, method: 'POST', path: '/bookings', headers: auth.service, requests: openingRequests(phase, bodies) }
      })
      progress.log('  checking invariants (API)')
      apiPart = await checkViaApi(server.url, auth.service, opening.eventId, expectedOf([row.warmup, row.run]))
      apiPart.problems.push(
        ...openingProblems(phases['warm-up']!, { spansOpening: false }).map(p => `warm-up: ${p}`),
        ...openingProblems(phases.run!).map(p => `run: ${p}`))
    }, onStopped(row))
    progress.log('  checking invariants (SQL on the stored data)')
    const expected = expectedOf([row.warmup, row.run])
    const sqlPart = await checkViaSql(db, event!.eventId, expected)
    sqlPart.problems.push(...await createdBeforeViaSql(db, event!))
    row.invariant = combine(expected, [apiPart!, sqlPart])
    row.opening = {
      users: OPENING_USERS,
      openingAt: OPENING_AT,
      nearMs: OPENING_MARGIN_MS,
      warmup: phases['warm-up'] === undefined ? null : openingStats(phases['warm-up']),
      run: phases.run === undefined ? null : openingStats(phases.run)
    }
    const inFlight = phases.run?.notOpenInFlight ?? 0
    if (inFlight > 0) row.notes.push(`run: ${inFlight} request(s) sent before the opening were answered ${NOT_OPEN} after it (decided before it)`)
  })
  return row
}
