/**
 * The checkout scenario's own check, next to the section invariant: every
 * confirm answered 200 is a confirmed booking with the paymentRef it was sent,
 * nothing else got confirmed, and no hold expired during the run (HOLD_TTL_MS
 * outlasts it). Through the API (counts by status) and in SQL (each id).
 */
import type { ApiClient } from '../test/helpers/http-client.ts'
import { countWithStatus } from '../test/helpers/hold-requests.ts'
import type { Database } from './stores.ts'

export interface ConfirmLog {
  /** booking ids whose confirm answered 200 with the confirmed booking */
  ids: Set<string>
  /** 200 answers that were not the confirmed booking */
  problems: string[]
  /** confirm requests built past the last hold id */
  overrun: number
}

export function newConfirmLog (): ConfirmLog {
  return { ids: new Set(), problems: [], overrun: 0 }
}

/** The payment reference sent with a hold's confirm: unique, so the stored one tells which request confirmed it. */
export function paymentRefOf (bookingId: string): string {
  return `bench-pay-${bookingId}`
}

/** Keeps the first few problems: one broken answer is usually thousands. */
export function note (problems: string[], problem: string): void {
  if (problems.length < 5) problems.push(problem)
}

/** The booking an answer carries, if its body is one. */
export function bookingOf (body: string): { _id?: string, status?: string, paymentRef?: string } | undefined {
  try {
    return (JSON.parse(body) as { data?: { _id?: string, status?: string, paymentRef?: string } }).data
  } catch {
    return undefined
  }
}

/** A confirm's answer: a 200 must carry the confirmed booking with its own paymentRef; its id joins log.ids. */
export function recordConfirm (log: ConfirmLog, status: number, body: string): void {
  if (status !== 200) return
  const data = bookingOf(body)
  if (data?._id === undefined || data.status !== 'confirmed' || data.paymentRef !== paymentRefOf(data._id)) {
    note(log.problems, `a confirm answered 200 with ${body.slice(0, 200)}`)
  } else {
    log.ids.add(data._id)
  }
}

/**
 * Confirmed bookings against the 200s: equal, or up to the requests left
 * unanswered more. `booked`: bookings answered 201 confirmed without a hold
 * (the onsale scenario's direct bookings), which are confirmed too.
 */
function countProblems (confirmed: number, expired: number, log: ConfirmLog, unanswered: number, booked: number): string[] {
  const problems = [...log.problems]
  const answered = log.ids.size + booked
  if (confirmed < answered || confirmed > answered + unanswered) {
    const range = unanswered === 0 ? `${answered}` : `${answered} to ${answered + unanswered}`
    problems.push(`${confirmed} bookings confirmed, but ${range} ${booked === 0 ? 'confirms answered 200' : `expected (${log.ids.size} confirms answered 200 + ${booked} bookings answered 201)`}`)
  }
  if (expired > 0) problems.push(`${expired} hold(s) expired during the run (HOLD_TTL_MS too short for it)`)
  return problems
}

async function problemsOf (check: () => Promise<string[]>): Promise<string[]> {
  try {
    return await check()
  } catch (err) {
    return [`confirm check: ${err instanceof Error ? err.message : String(err)}`]
  }
}

export async function confirmsViaApi (client: ApiClient, eventId: string, log: ConfirmLog, unanswered: number, booked = 0): Promise<string[]> {
  return await problemsOf(async () => countProblems(
    await countWithStatus(client, eventId, 'confirmed'), await countWithStatus(client, eventId, 'expired'), log, unanswered, booked))
}

export async function confirmsViaSql (db: Database, eventId: string, log: ConfirmLog, unanswered: number, booked = 0): Promise<string[]> {
  return await problemsOf(async () => await db.withSql(async sql => {
    const [counts] = await sql.query<{ confirmed: number, expired: number }>(
      `SELECT count(*) FILTER (WHERE status = 'confirmed')::int AS confirmed, count(*) FILTER (WHERE status = 'expired')::int AS expired
       FROM bookings WHERE event_id = $1`, [eventId])
    const problems = countProblems(counts.confirmed, counts.expired, log, unanswered, booked)
    // each id answered 200 must be stored confirmed, in this event, with its own paymentRef
    const wrong = await sql.query<{ id: string, status: string | null, payment_ref: string | null }>(
      `SELECT c.id, b.status, b.payment_ref
       FROM unnest($1::text[]) AS c(id) LEFT JOIN bookings b ON b.id = c.id AND b.event_id = $2
       WHERE b.status IS DISTINCT FROM 'confirmed' OR b.payment_ref IS DISTINCT FROM $3 || c.id
       LIMIT 5`, [[...log.ids], eventId, paymentRefOf('')])
    for (const w of wrong) {
      problems.push(`confirm of ${w.id} answered 200, but it is stored ${w.status ?? 'nowhere'}${w.payment_ref === null ? '' : ` with paymentRef ${w.payment_ref}`}`)
    }
    return problems
  }))
}
