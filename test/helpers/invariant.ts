/**
 * The booking invariant, one checker over three sources: plain data (the
 * Store port), the API (any client) and SQL on the stored data (pg or PGlite).
 * For every section: remaining >= 0 and capacity == remaining + held + sold,
 * where sold = qty of confirmed bookings and held = qty of held ones (cancelled
 * and expired bookings hold nothing); a section's own held/sold fields, where
 * it has them, must match those sums. Stored bookings must match the 201s.
 * Each check returns its problems: an empty list means the invariant holds.
 */
import type { EventView } from './create-event.ts'
import type { Sql } from './databases.ts'
import type { ApiClient } from './http-client.ts'
import { mapLimit } from './map-limit.ts'

export interface SectionState { _id: string, name?: string, capacity: number, remaining: number, held?: number, sold?: number }
export interface BookingState { _id?: string, sectionId: string, qty: number, status: string }
/** A section with the seats its bookings take. */
export type SectionCount = SectionState & { heldSeats: number, soldSeats: number }

export interface Expected {
  /** 201 answers */
  created: number
  /** requests that got no answer: each may or may not have been stored */
  unanswered?: number
  /** ids answered 201: each must be stored (API check, listing mode) */
  ids?: string[]
}

export interface InvariantCheck { sections: SectionCount[], storedBookings: number, problems: string[] }

/** The core: problems of sections whose seats were counted. */
function sectionProblems (sections: SectionCount[]): string[] {
  if (sections.length === 0) return ['the event has no sections']
  const problems: string[] = []
  for (const s of sections) {
    const label = `section ${s.name ?? s._id}`
    if (s.remaining < 0) problems.push(`${label}: remaining ${s.remaining} < 0`)
    if (s.capacity !== s.remaining + s.heldSeats + s.soldSeats) {
      problems.push(`${label}: capacity ${s.capacity} != remaining ${s.remaining} + held ${s.heldSeats} + sold ${s.soldSeats}`)
    }
    if (s.held !== undefined && s.held !== s.heldSeats) problems.push(`${label}: held ${s.held}, but held bookings take ${s.heldSeats}`)
    if (s.sold !== undefined && s.sold !== s.soldSeats) problems.push(`${label}: sold ${s.sold}, but confirmed bookings take ${s.soldSeats}`)
  }
  return problems
}

/** Counts the seats of each section's bookings (any order, any status). */
function countSeats (sections: SectionState[], bookings: BookingState[]): { sections: SectionCount[], problems: string[] } {
  const counts = new Map(sections.map(s => [s._id, { ...s, heldSeats: 0, soldSeats: 0 }]))
  const problems: string[] = []
  for (const b of bookings) {
    const count = counts.get(b.sectionId)
    if (count === undefined) problems.push(`booking ${b._id ?? ''} of unknown section ${b.sectionId}`)
    else if (b.status === 'confirmed') count.soldSeats += b.qty
    else if (b.status === 'held') count.heldSeats += b.qty
  }
  return { sections: [...counts.values()], problems }
}

/** The invariant over plain sections and all their bookings (e.g. read through the Store port). */
export function invariantProblems (sections: SectionState[], bookings: BookingState[]): string[] {
  const counted = countSeats(sections, bookings)
  return [...counted.problems, ...sectionProblems(counted.sections)]
}

/** Stored bookings against the 201s (a range when some requests got no answer). */
function storedProblems (stored: number, { created, unanswered = 0 }: Expected): string[] {
  if (stored >= created && stored <= created + unanswered) return []
  const expected = unanswered === 0 ? `${created}` : `${created} to ${created + unanswered} (+ unanswered requests)`
  return [`${stored} bookings stored, but ${expected} answered 201`]
}

async function get<T> (client: ApiClient, path: string): Promise<T> {
  const res = await client.request<T>('GET', path)
  if (res.status !== 200 || res.body.data === undefined) throw new Error(`GET ${path} answered ${res.status}: ${res.text}`)
  return res.body.data
}

interface Page<T> { items: T[], total: number }

/** Every booking of the event, any status, through the paged list. */
export async function allBookings (client: ApiClient, eventId: string): Promise<BookingState[]> {
  const items: BookingState[] = []
  for (let page = 1; ; page++) {
    const data = await get<Page<BookingState>>(client, `/bookings?eventId=${eventId}&limit=100&page=${page}`)
    items.push(...data.items)
    if (data.items.length < 100) return items
  }
}

export interface ApiCheckOptions {
  expected?: Expected
  /**
   * Every booking is for one seat: count bookings per section and status
   * (cheap with 100,000s of them) instead of listing them all for sum(qty).
   */
  singleSeat?: boolean
}

/** Through the API, as a client sees it now. */
export async function checkViaApi (client: ApiClient, eventId: string, { expected, singleSeat = false }: ApiCheckOptions = {}): Promise<InvariantCheck> {
  const event = await get<EventView>(client, `/api/events/${eventId}`)
  const problems: string[] = []
  let sections: SectionCount[]
  let storedBookings: number
  if (singleSeat) {
    const total = async (query: string): Promise<number> => (await get<Page<unknown>>(client, `/bookings?eventId=${eventId}${query}&limit=1`)).total
    sections = await mapLimit(event.sections, 8, async s => ({
      ...s,
      soldSeats: await total(`&sectionId=${s._id}&status=confirmed`),
      // the API lists held bookings once sections report held seats
      heldSeats: s.held === undefined ? 0 : await total(`&sectionId=${s._id}&status=held`)
    }))
    storedBookings = await total('')
  } else {
    const bookings = await allBookings(client, eventId)
    const counted = countSeats(event.sections, bookings)
    sections = counted.sections
    problems.push(...counted.problems)
    storedBookings = bookings.length
    const stored = new Set(bookings.map(b => b._id))
    for (const id of expected?.ids ?? []) if (!stored.has(id)) problems.push(`201 booking ${id} is not stored`)
  }
  problems.push(...sectionProblems(sections))
  if (expected !== undefined) problems.push(...storedProblems(storedBookings, expected))
  return { sections, storedBookings, problems }
}

/** In SQL on the stored data, exact sums of qty; a section's held/sold columns are compared once they exist. */
export async function checkViaSql (sql: Sql, eventId: string, expected?: Expected): Promise<InvariantCheck> {
  const rows = await sql.query<{ section: Record<string, unknown>, held: number, sold: number }>(
    `SELECT to_jsonb(s) AS section, coalesce(b.held, 0)::int AS held, coalesce(b.sold, 0)::int AS sold
     FROM sections s LEFT JOIN (
       SELECT section_id, sum(qty) FILTER (WHERE status = 'held') AS held, sum(qty) FILTER (WHERE status = 'confirmed') AS sold
       FROM bookings WHERE event_id = $1 GROUP BY section_id
     ) b ON b.section_id = s.id
     WHERE s.event_id = $1 ORDER BY s.position`, [eventId])
  const sections = rows.map(({ section: s, held, sold }) => ({
    _id: s.id as string,
    name: s.name as string,
    capacity: s.capacity as number,
    remaining: s.remaining as number,
    ...(s.held === undefined ? {} : { held: s.held as number }),
    ...(s.sold === undefined ? {} : { sold: s.sold as number }),
    heldSeats: held,
    soldSeats: sold
  }))
  const [{ count }] = await sql.query<{ count: number }>('SELECT count(*)::int AS count FROM bookings WHERE event_id = $1', [eventId])
  const problems = [...sectionProblems(sections), ...(expected === undefined ? [] : storedProblems(count, expected))]
  return { sections, storedBookings: count, problems }
}
