/**
 * The invariant check after a booking run, twice over:
 * - through the API while the server still runs (what a client sees):
 *   GET /api/events/:id for capacity and remaining, GET /bookings totals for
 *   the confirmed bookings of each section and all bookings of the event;
 * - in SQL on the stored data (exact sums of qty): PostgreSQL directly, the
 *   embedded store by opening its data directory once the server has stopped
 *   (so this also proves the bookings were durable across the shutdown).
 * Checked: remaining >= 0, capacity == remaining + sum(qty of confirmed
 * bookings) for every section, and stored bookings == 201 answers counted.
 */
import type { Database } from './stores.ts'
import { api } from './server.ts'

export interface Expected {
  /** 201 answers counted by autocannon (setup + warm-up + measured run) */
  created: number
  /** requests sent that got no answer: each may or may not have been stored */
  unanswered: number
}

export interface CheckPart {
  via: 'api' | 'sql'
  sections: number
  storedBookings: number
  soldSeats: number
  problems: string[]
}

export interface InvariantResult {
  ok: boolean
  expected: Expected
  parts: CheckPart[]
  problems: string[]
}

function countProblem (stored: number, expected: Expected): string | undefined {
  const { created, unanswered } = expected
  if (unanswered === 0) {
    return stored === created ? undefined : `${stored} bookings stored, but ${created} answers were 201`
  }
  return stored >= created && stored <= created + unanswered
    ? undefined
    : `${stored} bookings stored, expected ${created} (201s) to ${created + unanswered} (+ unanswered requests)`
}

interface SectionView { _id: string, capacity: number, remaining: number }
interface PageView { total: number }

async function mapLimit<T, R> (items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length)
  let next = 0
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++
      results[i] = await fn(items[i])
    }
  }))
  return results
}

/**
 * Through the API. The bench books qty 1 only, so a section's confirmed
 * bookings count is its seat sum here; the SQL part sums the real qty.
 */
export async function checkViaApi (url: string, eventId: string, expected: Expected): Promise<CheckPart> {
  const problems: string[] = []
  const event = await api<{ sections: SectionView[] }>(url, 'GET', `/api/events/${eventId}`)
  if (event.status !== 200 || event.body.data === undefined) {
    return { via: 'api', sections: 0, storedBookings: 0, soldSeats: 0, problems: [`GET /api/events/${eventId} answered ${event.status}`] }
  }
  const sections = event.body.data.sections
  const confirmed = await mapLimit(sections, 8, async (section) => {
    const page = await api<PageView>(url, 'GET', `/bookings?eventId=${eventId}&sectionId=${section._id}&status=confirmed&limit=1`)
    if (page.status !== 200 || page.body.data === undefined) throw new Error(`GET /bookings answered ${page.status}`)
    return page.body.data.total
  })
  let soldSeats = 0
  sections.forEach((section, i) => {
    soldSeats += confirmed[i]
    if (section.remaining < 0) problems.push(`section ${section._id}: remaining ${section.remaining} < 0`)
    if (section.capacity !== section.remaining + confirmed[i]) {
      problems.push(`section ${section._id}: capacity ${section.capacity} != remaining ${section.remaining} + ${confirmed[i]} confirmed`)
    }
  })
  const all = await api<PageView>(url, 'GET', `/bookings?eventId=${eventId}&limit=1`)
  const storedBookings = all.body.data?.total ?? -1
  const problem = countProblem(storedBookings, expected)
  if (problem !== undefined) problems.push(problem)
  return { via: 'api', sections: sections.length, storedBookings, soldSeats, problems }
}

export async function checkViaSql (db: Database, eventId: string, expected: Expected): Promise<CheckPart> {
  return await db.withSql(async (sql) => {
    const problems: string[] = []
    const sections = await sql.query<{ id: string, capacity: number, remaining: number, sold: number }>(
      `SELECT s.id, s.capacity, s.remaining,
              coalesce(sum(b.qty) FILTER (WHERE b.status = 'confirmed'), 0)::int AS sold
       FROM sections s LEFT JOIN bookings b ON b.section_id = s.id
       WHERE s.event_id = $1 GROUP BY s.id, s.capacity, s.remaining`, [eventId])
    const [{ count }] = await sql.query<{ count: number }>('SELECT count(*)::int AS count FROM bookings WHERE event_id = $1', [eventId])
    let soldSeats = 0
    for (const s of sections) {
      soldSeats += s.sold
      if (s.remaining < 0) problems.push(`section ${s.id}: remaining ${s.remaining} < 0`)
      if (s.capacity !== s.remaining + s.sold) problems.push(`section ${s.id}: capacity ${s.capacity} != remaining ${s.remaining} + sold ${s.sold}`)
    }
    if (sections.length === 0) problems.push(`event ${eventId} has no stored sections`)
    const problem = countProblem(count, expected)
    if (problem !== undefined) problems.push(problem)
    return { via: 'sql' as const, sections: sections.length, storedBookings: count, soldSeats, problems }
  })
}

export function combine (expected: Expected, parts: CheckPart[]): InvariantResult {
  const problems = parts.flatMap(p => p.problems.map(msg => `${p.via}: ${msg}`))
  return { ok: problems.length === 0 && parts.length > 0, expected, parts, problems }
}
