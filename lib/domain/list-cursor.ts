/**
 * List cursors (keyset pages): the one place a cursor is made and read. To
 * clients it is opaque; it is the base64url of the JSON `[createdAt, id]` of
 * a page's last item. Lists are newest first, (createdAt, id) descending, so
 * the next page is the items below that pair, however many were added above it
 * since: none is skipped or repeated, as offsets would.
 */
import {
  BOOKING_ID_PATTERN, CURSOR_PATTERN, ID_PATTERN, pageQuery,
  type ListPosition, type Page, type PageAsk, type PageQuery
} from '../api/schemas.ts'
import { InvalidInputError } from './errors.ts'

/** The moment as every item carries it: toISOString's text (milliseconds, UTC). */
const ISO_MOMENT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/
const CURSOR = new RegExp(CURSOR_PATTERN)
/** What a list's ids look like: a cursor with another id came from no page of that list. */
const LIST_IDS = { events: new RegExp(ID_PATTERN), bookings: new RegExp(BOOKING_ID_PATTERN) }
export type ListKind = keyof typeof LIST_IDS

/** The cursor of the page after `item`. */
export function encodeCursor (item: { createdAt: string, _id: string }): string {
  return Buffer.from(JSON.stringify([item.createdAt, item._id])).toString('base64url')
}

/** The position a cursor names, or null when it is none this list makes. */
export function decodeCursor (cursor: string, kind: ListKind): ListPosition | null {
  // Buffer skips characters outside the alphabet: checked first, so one text names one position
  if (!CURSOR.test(cursor)) return null
  let value: unknown
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
  } catch {
    return null
  }
  if (!Array.isArray(value) || value.length !== 2) return null
  const [createdAt, id] = value as unknown[]
  if (typeof createdAt !== 'string' || typeof id !== 'string' || !LIST_IDS[kind].test(id)) return null
  // a real moment (no 25th hour), written as the stores write it
  if (!ISO_MOMENT.test(createdAt) || new Date(createdAt).toISOString() !== createdAt) return null
  return { createdAt, id }
}

/** The page asked for: a number or a cursor, not both; a 400 naming the field otherwise. */
export function listQuery (ask: PageAsk, kind: ListKind): PageQuery {
  const query = pageQuery(ask)
  if (ask.cursor === undefined) return query
  if (ask.page !== undefined) throw new InvalidInputError('page', 'querystring.page cannot be sent with cursor: a cursor names its page')
  const after = decodeCursor(ask.cursor, kind)
  if (after === null) throw new InvalidInputError('cursor', 'querystring.cursor is not a cursor of this list: send a nextCursor as it was given')
  return { ...query, after }
}

/** A page of a list: nextCursor when it is full (more may follow), null when it came back short. */
export function listPage<T extends { createdAt: string, _id: string }> (items: T[], total: number, query: PageQuery): Page<T> {
  const last = items.length === query.limit ? items.at(-1) : undefined
  return { items, total, page: query.page, limit: query.limit, nextCursor: last === undefined ? null : encodeCursor(last) }
}
