/**
 * The invariant check after a booking run (test/helpers/invariant.ts), twice over:
 * - through the API while the server still runs (what a client sees: the
 *   service that booked, which sees every booking); the bench books qty 1
 *   only, so bookings are counted per section, not listed;
 * - in SQL on the stored data (exact sums of qty): PostgreSQL directly, the
 *   embedded store by opening its data directory once the server has stopped
 *   (so this also proves the bookings were durable across the shutdown).
 */
import { checkViaApi as apiCheck, checkViaSql as sqlCheck, type Expected, type InvariantCheck } from '../test/helpers/invariant.ts'
import { benchClient } from './server.ts'
import type { Database } from './stores.ts'

export type { Expected }

export interface CheckPart {
  via: 'api' | 'sql'
  sections: number
  storedBookings: number
  soldSeats: number
  /** section id -> remaining seats at the check (onsale: did a sold-out section really sell out) */
  remaining: Record<string, number>
  problems: string[]
}

export interface InvariantResult {
  ok: boolean
  expected: Expected
  parts: CheckPart[]
  problems: string[]
}

/** The check's outcome as recorded; a check that could not run is a problem too. */
async function part (via: CheckPart['via'], check: () => Promise<InvariantCheck>): Promise<CheckPart> {
  try {
    const { sections, storedBookings, problems } = await check()
    const remaining = Object.fromEntries(sections.map(s => [s._id, s.remaining]))
    return { via, sections: sections.length, storedBookings, soldSeats: sections.reduce((n, s) => n + s.soldSeats, 0), remaining, problems }
  } catch (err) {
    return { via, sections: 0, storedBookings: 0, soldSeats: 0, remaining: {}, problems: [err instanceof Error ? err.message : String(err)] }
  }
}

/** `headers`: the token of a principal that sees every booking of the event. */
export async function checkViaApi (url: string, headers: Record<string, string>, eventId: string, expected: Expected): Promise<CheckPart> {
  return await part('api', async () => await apiCheck(benchClient(url, headers), eventId, { expected, singleSeat: true }))
}

export async function checkViaSql (db: Database, eventId: string, expected: Expected): Promise<CheckPart> {
  return await part('sql', async () => await db.withSql(async sql => await sqlCheck(sql, eventId, expected)))
}

export function combine (expected: Expected, parts: CheckPart[]): InvariantResult {
  const problems = parts.flatMap(p => p.problems.map(msg => `${p.via}: ${msg}`))
  return { ok: problems.length === 0 && parts.length > 0, expected, parts, problems }
}
