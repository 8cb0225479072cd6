/**
 * The checkout scenario: what paying for a seat costs, in two rows.
 * - checkout-hold: POST /bookings with "hold": true, qty 1, on ONE section
 *   that never sells out, LIST_USERS users in turn, for --duration seconds;
 * - checkout-confirm: POST /api/bookings/:id/confirm with a paymentRef, once
 *   for each hold answered 201 (their ids come from the 201 bodies).
 * Each confirm phase confirms the holds of the same hold phase (warm-up's, then
 * the run's), so a confirm run is a fixed number of requests, not a duration:
 * a confirm needs a hold of its own. HOLD_TTL_MS outlasts the whole scenario,
 * so no hold expires before its confirm is sent.
 */
import type autocannon from 'autocannon'
import { BIG_CAPACITY, type BatchName, type BenchOptions } from './options.ts'
import { withUndo } from './cleanup.ts'
import { bookingOf, confirmsViaApi, confirmsViaSql, newConfirmLog, note, paymentRefOf, recordConfirm, type ConfirmLog } from './checkout-check.ts'
import { checkViaApi, checkViaSql, combine, type CheckPart, type Expected } from './invariants.ts'
import { DRAIN_SECONDS } from './load.ts'
import { progress } from './progress.ts'
import { createEvent } from '../test/helpers/create-event.ts'
import { benchClient, withServer } from './server.ts'
import {
  count, LIST_USERS, newRow, onStopped, publicEnv, serverEnv, userOf, warmAndMeasure, type Context, type Phase, type PhaseSpec, type Row
} from './scenarios.ts'

/** Upper bound of one confirm phase, in seconds (it normally takes about as long as its hold phase). */
const CONFIRM_MAX_SECONDS = 120

/** A hold length no phase of the scenario can outlast: both hold phases and their drains, both confirm phases at their bound, a minute to spare. */
export function holdTtlMs (opts: BenchOptions): number {
  const seconds = opts.warmup + opts.duration + 2 * DRAIN_SECONDS + 2 * CONFIRM_MAX_SECONDS + 60
  return Math.max(600_000, seconds * 1000)
}

interface HoldLog {
  /** ids of the holds answered 201, per phase: the confirms of the same phase take them */
  ids: Record<Phase, string[]>
  problems: string[]
}

/** Holds in turn for each user; each 201's booking id goes to `ids`. */
function holdRequests (bodies: string[], ids: string[], log: HoldLog): autocannon.Request[] {
  let next = 0
  return [{
    method: 'POST',
    path: '/bookings',
    headers: { 'content-type': 'application/json' },
    setupRequest: (request: autocannon.Request) => ({ ...request, body: bodies[next++ % bodies.length] }),
    onResponse: (status: number, body: string) => {
      if (status !== 201) return
      const data = bookingOf(body)
      if (data?._id === undefined || data.status !== 'held') note(log.problems, `a hold answered 201 with ${body.slice(0, 200)}`)
      else ids.push(data._id)
    }
  }]
}

/**
 * One confirm per hold id, in order. autocannon builds exactly `amount`
 * requests (each connection's first when it connects, then one per answer),
 * so every id is confirmed once; `overrun` counts builds past the end.
 */
function confirmRequests (ids: string[], log: ConfirmLog): autocannon.Request[] {
  let next = 0
  return [{
    method: 'POST',
    path: '/api/bookings/-/confirm',
    headers: { 'content-type': 'application/json' },
    setupRequest: (request: autocannon.Request) => {
      if (next >= ids.length) log.overrun++
      const id = ids[Math.min(next++, ids.length - 1)]
      return { ...request, path: `/api/bookings/${id}/confirm`, body: JSON.stringify({ paymentRef: paymentRefOf(id) }) }
    },
    onResponse: (status: number, body: string) => { recordConfirm(log, status, body) }
  }]
}

function confirmSpec (url: string, headers: Record<string, string>, ids: string[], log: ConfirmLog, opts: BenchOptions): PhaseSpec {
  if (ids.length === 0) throw new Error('no hold was answered 201: nothing to confirm')
  return {
    url,
    path: '/api/bookings/-/confirm',
    method: 'POST',
    headers,
    requests: confirmRequests(ids, log),
    amount: ids.length,
    maxSeconds: CONFIRM_MAX_SECONDS,
    // autocannon refuses more connections than requests
    connections: Math.min(opts.connections, ids.length)
  }
}

export async function runCheckout (ctx: Context, batch: BatchName): Promise<Row[]> {
  const { opts, backend, auth } = ctx
  const holdRow = newRow('checkout-hold', backend.name, batch, `POST /bookings "hold": true qty 1, ${LIST_USERS} users, service token`)
  const confirmRow = newRow('checkout-confirm', backend.name, batch, 'POST /api/bookings/:id/confirm {paymentRef}, once per hold, service token')
  const db = await backend.create()
  await withUndo(db.drop, async () => {
    const env = { ...serverEnv(db, batch, auth), HOLD_TTL_MS: String(holdTtlMs(opts)) }
    holdRow.server.env = confirmRow.server.env = publicEnv(env)
    const holds: HoldLog = { ids: { 'warm-up': [], run: [] }, problems: [] }
    const confirms = newConfirmLog()
    let eventId = ''
    let expected: Expected = { created: 0, unanswered: 0 }
    let apiPart: CheckPart | undefined
    let apiConfirms: string[] = []
    progress.log('  starting server')
    await withServer(env, async (server) => {
      const event = await createEvent(benchClient(server.url, auth.service), [BIG_CAPACITY], { name: 'bench checkout', headers: auth.organizer })
      eventId = event.eventId
      const bodies = Array.from({ length: LIST_USERS }, (_, i) => JSON.stringify({ eventId, sectionId: event.sectionId, qty: 1, userId: userOf(i), hold: true }))
      progress.log('  holds')
      await warmAndMeasure(ctx, holdRow, phase => ({
        url: server.url, method: 'POST', path: '/bookings', headers: auth.service, requests: holdRequests(bodies, holds.ids[phase], holds)
      }), { cpu: true })
      progress.log('  confirms of those holds')
      try {
        await warmAndMeasure(ctx, confirmRow, phase => confirmSpec(server.url, auth.service, holds.ids[phase], confirms, opts), { cpu: true, cpuStatus: 200 })
      } catch (err) {
        // the holds were measured: keep their row, and check what was stored
        confirmRow.error = err instanceof Error ? (err.stack ?? err.message) : String(err)
      }
      expected = {
        created: count(holdRow.warmup, 201) + count(holdRow.run, 201),
        unanswered: (holdRow.warmup?.unanswered ?? 0) + (holdRow.run?.unanswered ?? 0)
      }
      progress.log('  checking invariants (API)')
      apiPart = await checkViaApi(server.url, auth.service, eventId, expected)
      apiConfirms = await confirmsViaApi(benchClient(server.url, auth.service), eventId, confirms, unansweredOf(confirmRow))
    }, stopped => { onStopped(holdRow)(stopped); onStopped(confirmRow)(stopped) })
    progress.log('  checking invariants (SQL on the stored data)')
    const sqlPart = await checkViaSql(db, eventId, expected)
    const sqlConfirms = await confirmsViaSql(db, eventId, confirms, unansweredOf(confirmRow))
    apiPart!.problems.push(...holds.problems, ...apiConfirms)
    sqlPart.problems.push(...sqlConfirms)
    holdRow.invariant = confirmRow.invariant = combine(expected, [apiPart!, sqlPart])
    if (confirms.overrun > 0) confirmRow.notes.push(`${confirms.overrun} confirm(s) built past the last hold (autocannon built more requests than its amount): they repeated the last confirm`)
  })
  return [holdRow, confirmRow]
}

function unansweredOf (row: Row): number {
  return (row.warmup?.unanswered ?? 0) + (row.run?.unanswered ?? 0)
}
