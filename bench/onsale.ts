/**
 * The onsale scenario: what an on-sale really sends, on one event of 20
 * sections, through one freshly started server. Per 20 requests (ONSALE_MIX):
 * 8 availability reads (GET /api/events/:id, no token, as a browser), 6
 * bookings, 3 holds (`"hold": true`) and 3 confirms of holds answered 201
 * earlier (with a paymentRef). Writes go round-robin over the sections, for
 * ONSALE_USERS users, qty 1, with the service token.
 *
 * Each phase gets its own event, so the sections the measured run sells out
 * sell out during that run: the warm-up's event has small sections of
 * WARMUP_SMALL_CAPACITY (its 409s warm that path), and the run's small
 * sections are sized from the warm-up's rate to sell out SELL_OUT_AT into it.
 * 409 SOLD_OUT is then an expected answer of bookings and holds.
 */
import type autocannon from 'autocannon'
import { performance } from 'node:perf_hooks'
import type { BatchName } from './options.ts'
import { withUndo } from './cleanup.ts'
import { holdTtlMs } from './checkout.ts'
import { confirmsViaApi, confirmsViaSql, paymentRefOf } from './checkout-check.ts'
import { checkViaApi, checkViaSql, combine, type CheckPart, type Expected } from './invariants.ts'
import type { LoadResult } from './load.ts'
import { answerProblems, newPhase, phaseStats, recordAnswer, soldOutProblems, type OnsalePhase } from './onsale-check.ts'
import {
  mixCycle, ONSALE_MIX, ONSALE_SECTIONS, ONSALE_USERS, onsaleCapacities, pickKind, seatsPerSectionPerSecond, SELL_OUT_SECTIONS, sellOutCapacity,
  WARMUP_SMALL_CAPACITY, type OnsaleKind
} from './onsale-mix.ts'
import { progress } from './progress.ts'
import { createEvent } from '../test/helpers/create-event.ts'
import { benchClient, withServer } from './server.ts'
import { newRow, onStopped, publicEnv, serverEnv, userOf, warmAndMeasure, type Context, type Phase, type Row } from './scenarios.ts'

/** What a connection's request in flight was, for its answer (autocannon keeps one context per connection). */
interface RequestContext { kind?: OnsaleKind, section?: number }

/**
 * A request's headers without the Content-Length autocannon wrote into the
 * shared headers for the previous body (bodies differ in length here); a read
 * is a public request: no token, no body type either.
 */
function headersFor (kind: OnsaleKind, headers: autocannon.Request['headers']): autocannon.Request['headers'] {
  const drop = kind === 'read' ? ['content-length', 'authorization', 'content-type'] : ['content-length']
  return Object.fromEntries(Object.entries(headers ?? {}).filter(([name]) => !drop.includes(name.toLowerCase())))
}

/** The phase's requests, each built when its connection is free to send it (pipelining 1). */
function onsaleRequests (phase: OnsalePhase): autocannon.Request[] {
  const cycle = mixCycle(ONSALE_MIX)
  let sent = 0
  let writes = 0
  let start: number | undefined
  const eventPath = `/api/events/${phase.eventId}`
  return [{
    method: 'GET',
    path: eventPath,
    setupRequest: (request: autocannon.Request, context: object) => {
      start ??= performance.now()
      const ctx = context as RequestContext
      const due = cycle[sent % cycle.length]
      const kind = pickKind(cycle, sent++, phase.holds.length - phase.nextConfirm)
      if (kind !== due) phase.confirmsAsReads++
      ctx.kind = kind
      const headers = headersFor(kind, request.headers)
      if (kind === 'read') return { ...request, method: 'GET', path: eventPath, headers, body: undefined }
      if (kind === 'confirm') {
        const id = phase.holds[phase.nextConfirm++]
        return { ...request, method: 'POST', path: `/api/bookings/${id}/confirm`, headers, body: JSON.stringify({ paymentRef: paymentRefOf(id) }) }
      }
      const n = writes++
      ctx.section = n % ONSALE_SECTIONS
      const body = { eventId: phase.eventId, sectionId: phase.sectionIds[ctx.section], qty: 1, userId: userOf(n % ONSALE_USERS), ...(kind === 'hold' ? { hold: true } : {}) }
      return { ...request, method: 'POST', path: '/bookings', headers, body: JSON.stringify(body) }
    },
    onResponse: (status: number, body: string, context: object) => {
      const { kind, section = -1 } = context as RequestContext
      if (kind !== undefined) recordAnswer(phase, kind, section, status, body, (performance.now() - (start ?? 0)) / 1000)
    }
  }]
}

function unanswered (result: LoadResult | null): number {
  return result?.unanswered ?? 0
}

function expectedOf (result: LoadResult | null): Expected {
  return { created: result?.status['201'] ?? 0, unanswered: unanswered(result) }
}

/** Bookings made without a hold: confirmed at once, so the confirm check counts them too. */
function booked (phase: OnsalePhase): number {
  return phase.answers.book['201'] ?? 0
}

export async function runOnsale (ctx: Context, batch: BatchName): Promise<Row> {
  const { opts, backend, auth } = ctx
  const mix = Object.entries(ONSALE_MIX).map(([kind, n]) => `${n} ${kind}`).join(', ')
  const row = newRow('onsale', backend.name, batch, `per 20 requests: ${mix}; ${ONSALE_SECTIONS} sections, qty 1, ${ONSALE_USERS} users, service token (reads: none)`)
  const db = await backend.create()
  await withUndo(db.drop, async () => {
    // no hold may expire before its confirm: the confirm check counts on it
    const env = { ...serverEnv(db, batch, auth), HOLD_TTL_MS: String(holdTtlMs(opts)) }
    row.server.env = publicEnv(env)
    const phases: Partial<Record<Phase, OnsalePhase>> = {}
    const parts: CheckPart[] = []
    const checked: Array<{ label: Phase, phase: OnsalePhase, result: LoadResult | null }> = []
    progress.log('  starting server')
    await withServer(env, async (server) => {
      const client = benchClient(server.url, auth.service)
      await warmAndMeasure(ctx, row, async label => {
        const small = label === 'warm-up' || row.warmup === null
          ? WARMUP_SMALL_CAPACITY
          : sellOutCapacity(seatsPerSectionPerSecond(phases['warm-up']!.createdBySection, row.warmup.seconds), opts.duration)
        const event = await createEvent(client, onsaleCapacities(small), { name: `bench onsale ${label}`, headers: auth.organizer })
        const phase = phases[label] = newPhase(event.eventId, event.sectionIds, small)
        progress.log(`  ${label} event: ${ONSALE_SECTIONS} sections, ${SELL_OUT_SECTIONS} of ${small} seats`)
        return { url: server.url, method: 'GET', path: `/api/events/${event.eventId}`, headers: auth.service, requests: onsaleRequests(phase) }
      }, { cpu: true })
      checked.push({ label: 'warm-up', phase: phases['warm-up']!, result: row.warmup }, { label: 'run', phase: phases.run!, result: row.run })
      progress.log('  checking invariants (API)')
      for (const { label, phase, result } of checked) {
        const api = await checkViaApi(server.url, auth.service, phase.eventId, expectedOf(result))
        api.problems.push(...phase.problems, ...answerProblems(phase.answers), ...soldOutProblems(phase, api.remaining),
          ...await confirmsViaApi(client, phase.eventId, phase.confirms, unanswered(result), booked(phase)))
        parts.push(labelled(label, api))
      }
    }, onStopped(row))
    progress.log('  checking invariants (SQL on the stored data)')
    for (const { label, phase, result } of checked) {
      const sql = await checkViaSql(db, phase.eventId, expectedOf(result))
      sql.problems.push(...soldOutProblems(phase, sql.remaining), ...await confirmsViaSql(db, phase.eventId, phase.confirms, unanswered(result), booked(phase)))
      parts.push(labelled(label, sql))
    }
    row.invariant = combine(expectedOf(row.run), parts)
    row.onsale = {
      mix: ONSALE_MIX,
      warmup: phases['warm-up'] === undefined ? null : phaseStats(phases['warm-up']),
      run: phases.run === undefined ? null : phaseStats(phases.run)
    }
    const asReads = phases.run?.confirmsAsReads ?? 0
    if (asReads > 0) row.notes.push(`run: ${asReads} confirm(s) found no hold waiting and were sent as reads`)
  })
  return row
}

/** A check of one phase's event: its problems say which. */
function labelled (label: Phase, part: CheckPart): CheckPart {
  return { ...part, problems: part.problems.map(p => `${label} event: ${p}`) }
}
