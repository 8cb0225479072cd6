/**
 * The MongoDB store's outbox and webhooks. Records are numbered in commit
 * order: every transaction that records a change increments one counter
 * document last, and of two transactions writing it the later one meets a
 * write conflict until the earlier has committed (then it runs again and
 * takes the next numbers). So no record is ever committed below one already
 * readable, and the feed is simply read by number. As on SQL, a section
 * batch's bookings are one document (ids and statuses), read back as they
 * were then (lib/domain/changes.ts).
 */
import type { ClientSession, Db, Filter } from 'mongodb'
import { bookingChangeType, feedChange, unpackBooking, type ChangeType } from '../../domain/changes.ts'
import type { BookingStatus } from '../../api/schemas.ts'
import { BOOKINGS, bookingFromDocument, parseBookingId, type BookingDocument } from './documents.ts'
import { InvalidInputError } from '../../domain/errors.ts'
import type { WebhookEndpoint } from '../../domain/webhooks.ts'
import type { ChangeStore } from '../driver.ts'

export const CHANGES = 'changes'
export const COUNTERS = 'counters'
export const WEBHOOKS = 'webhooks'

export interface ChangeDocument {
  /** its number in the feed */
  _id: number
  occurredAt: Date
  eventId: string
  owner: string
  /** a change of an event or a section, with its data; absent on a batch's bookings document */
  type?: ChangeType
  data?: unknown
  /** a batch's bookings: its section, each booking changed and the status it reached, packed (lib/domain/changes.ts) */
  sectionId?: string
  bookings?: string
  statuses?: string
}

/** A record to append: a change of its own, or a batch's bookings. */
export type NewChange = Omit<ChangeDocument, '_id' | 'occurredAt'>

interface CounterDocument { _id: string, seq: number, at: Date }

export interface WebhookDocument {
  _id: string
  owner: string
  url: string
  types: ChangeType[]
  secret: string
  createdAt: Date
  /** its place in the feed, as listChanges answers it */
  cursor: string
  /** the number of the document its cursor is in: every document below it was passed */
  cursorSeq: number
  failures: number
  failingSince?: Date
  nextAttemptAt: Date
  lastError?: string
  delivered: number
  disabled: boolean
  disabledReason?: string
  leaseOwner?: string
  leaseUntil?: Date
}

export const CHANGE_INDEXES = [{ key: { occurredAt: 1 }, name: 'changes_occurred' }]
export const WEBHOOK_INDEXES = [{ key: { owner: 1, createdAt: 1, _id: 1 }, name: 'webhooks_owner' }]

/**
 * Appends records inside the session's transaction, last (the counter is
 * every recording transaction's meeting point: held as briefly as may be).
 * `at`: the batch's moment; else the database's clock as the counter moves.
 */
export async function appendChanges (db: Db, session: ClientSession, records: readonly NewChange[], at?: Date): Promise<void> {
  if (records.length === 0) return
  const counter = await db.collection<CounterDocument>(COUNTERS).findOneAndUpdate({ _id: CHANGES },
    [{ $set: { seq: { $add: [{ $ifNull: ['$seq', 0] }, records.length] }, at: '$$NOW' } }],
    { session, upsert: true, returnDocument: 'after' })
  if (counter === null) throw new Error('the change counter was not written')
  const first = counter.seq - records.length + 1
  await db.collection<ChangeDocument>(CHANGES).insertMany(records.map((r, i) => ({ ...r, _id: first + i, occurredAt: at ?? counter.at })), { session })
}

/** A place in the feed: a document's number, and how many of its changes (from 1) were passed. */
interface FeedPlace { seq: number, n: number }
const CURSOR = /^(\d{1,15})\.(\d{1,9})$/
function parseCursor (cursor: string | undefined, field: string): FeedPlace {
  if (cursor === undefined) return { seq: 0, n: 0 }
  const match = CURSOR.exec(cursor)
  if (match === null) throw new InvalidInputError(field, `${field} must be a cursor this service answered (nextCursor)`)
  return { seq: Number(match[1]), n: Number(match[2]) }
}
const cursorOf = (place: FeedPlace): string => `${place.seq}.${place.n}`

function toWebhook (doc: WebhookDocument): WebhookEndpoint {
  const endpoint: WebhookEndpoint = {
    _id: doc._id,
    owner: doc.owner,
    url: doc.url,
    types: doc.types,
    secret: doc.secret,
    createdAt: doc.createdAt.toISOString(),
    cursor: doc.cursor,
    failures: doc.failures,
    nextAttemptAt: doc.nextAttemptAt.toISOString(),
    delivered: doc.delivered,
    disabled: doc.disabled
  }
  if (doc.failingSince !== undefined) endpoint.failingSince = doc.failingSince.toISOString()
  if (doc.lastError !== undefined) endpoint.lastError = doc.lastError
  if (doc.disabledReason !== undefined) endpoint.disabledReason = doc.disabledReason
  return endpoint
}

const WITHOUT_LEASE = { projection: { leaseOwner: 0, leaseUntil: 0 } }

export function mongoChangeStore (db: Db, serverNow: () => Promise<Date>): ChangeStore<AbortSignal> {
  const changes = db.collection<ChangeDocument>(CHANGES)
  const webhooks = db.collection<WebhookDocument>(WEBHOOKS)
  const counters = db.collection<CounterDocument>(COUNTERS)
  const leaseUntil = (now: Date, leaseMs: number): Date => new Date(now.getTime() + leaseMs)
  const leaseFree = (holder: string, now: Date) => ({ $or: [{ leaseOwner: { $exists: false } }, { leaseUntil: { $lt: now } }, { leaseOwner: holder }] })

  return {
    async listChanges ({ after, limit, types, owner }) {
      const from = parseCursor(after, 'after')
      const wanted = types === undefined ? undefined : new Set<string>(types)
      // a batch's bookings document is read whatever its types: its bookings are told apart below
      const filter: Filter<ChangeDocument> = {
        _id: { $gte: from.seq },
        ...(owner === undefined ? {} : { owner }),
        ...(types === undefined ? {} : { $or: [{ type: { $in: [...types] } }, { bookings: { $exists: true } }] })
      }
      // each document's changes, numbered from 1, past the cursor's
      const entries: Array<{ doc: ChangeDocument, n: number, booking?: string, status?: BookingStatus }> = []
      for await (const doc of changes.find(filter).sort({ _id: 1 })) {
        const count = doc.statuses?.length ?? 1
        for (let n = doc._id === from.seq ? from.n + 1 : 1; n <= count && entries.length < limit; n++) {
          const named = doc.statuses === undefined ? undefined : unpackBooking(doc.sectionId ?? '', { ids: doc.bookings ?? '', statuses: doc.statuses }, n)
          if (wanted !== undefined && !wanted.has(doc.type ?? bookingChangeType(named?.status as BookingStatus))) continue
          entries.push({ doc, n, booking: named?.id, status: named?.status })
        }
        if (entries.length >= limit) break
      }
      const ids = entries.flatMap(e => e.booking === undefined ? [] : [parseBookingId(e.booking) ?? e.booking])
      const found = ids.length === 0 ? [] : await db.collection<BookingDocument>(BOOKINGS).find({ _id: { $in: ids } }).toArray()
      const bookings = new Map(found.map(d => bookingFromDocument(d)).map(b => [b._id, b]))
      const items = entries.map(({ doc, n, booking, status }) => feedChange({
        row: doc._id,
        occurredAt: doc.occurredAt.toISOString(),
        eventId: doc.eventId,
        owner: doc.owner,
        cursor: cursorOf({ seq: doc._id, n }),
        type: doc.type ?? null,
        data: doc.data,
        booking: booking === undefined || status === undefined ? null : { n, status, stored: bookings.get(booking) }
      }))
      return { items, nextCursor: items.at(-1)?.cursor ?? cursorOf(from) }
    },

    async createWebhook ({ _id, owner, url, types, secret }) {
      // the feed's head: numbers are taken in commit order, so every later record is above it
      const head = await counters.findOne({ _id: CHANGES })
      const now = await serverNow()
      // past every change of the head's document and of those below it
      const start = { seq: (head?.seq ?? 0) + 1, n: 0 }
      const doc: WebhookDocument = {
        _id, owner, url, types, secret, createdAt: now, cursor: cursorOf(start), cursorSeq: start.seq, failures: 0, nextAttemptAt: now, delivered: 0, disabled: false
      }
      await webhooks.insertOne(doc)
      return toWebhook(doc)
    },

    async listWebhooks (owner) {
      const docs = await webhooks.find(owner === null ? {} : { owner }, WITHOUT_LEASE).sort({ createdAt: 1, _id: 1 }).toArray()
      return docs.map(toWebhook)
    },

    async getWebhook (id) {
      const doc = await webhooks.findOne({ _id: id }, WITHOUT_LEASE)
      return doc === null ? null : toWebhook(doc)
    },

    async deleteWebhook (id) {
      const { deletedCount } = await webhooks.deleteOne({ _id: id })
      return deletedCount > 0
    },

    async claimWebhooks (holder, leaseMs, limit) {
      const now = await serverNow()
      const due = await webhooks.find({ disabled: false, nextAttemptAt: { $lte: now }, ...leaseFree(holder, now) }, { projection: { _id: 1 } })
        .sort({ nextAttemptAt: 1 }).limit(limit).toArray()
      const claimed: WebhookEndpoint[] = []
      for (const { _id } of due) {
        // each claim conditional on the lease being free still: of two instances, one gets it
        const doc = await webhooks.findOneAndUpdate({ _id, disabled: false, ...leaseFree(holder, now) },
          { $set: { leaseOwner: holder, leaseUntil: leaseUntil(now, leaseMs) } }, { returnDocument: 'after' })
        if (doc !== null) claimed.push(toWebhook(doc))
      }
      return claimed
    },

    async saveWebhook (id, holder, progress, leaseMs) {
      const now = await serverNow()
      const set: Partial<WebhookDocument> = {
        cursor: progress.cursor,
        cursorSeq: parseCursor(progress.cursor, 'cursor').seq,
        failures: progress.failures,
        nextAttemptAt: new Date(progress.nextAttemptAt),
        disabled: progress.disabled,
        leaseUntil: leaseUntil(now, leaseMs)
      }
      const unset: Record<string, ''> = {}
      if (progress.failingSince === undefined) unset.failingSince = ''
      else set.failingSince = new Date(progress.failingSince)
      if (progress.lastError === undefined) unset.lastError = ''
      else set.lastError = progress.lastError
      if (progress.disabledReason === undefined) unset.disabledReason = ''
      else set.disabledReason = progress.disabledReason
      const { matchedCount } = await webhooks.updateOne({ _id: id, leaseOwner: holder, leaseUntil: { $gte: now } },
        { $set: set, $inc: { delivered: progress.delivered }, ...(Object.keys(unset).length === 0 ? {} : { $unset: unset }) })
      return matchedCount > 0
    },

    async releaseWebhooks (holder) {
      await webhooks.updateMany({ leaseOwner: holder }, { $unset: { leaseOwner: '', leaseUntil: '' } })
    },

    async pruneChanges (before, limit) {
      // a document an endpoint's cursor is in may be partly passed: only those below every one go
      const enabled = await webhooks.find({ disabled: false }, { projection: { cursorSeq: 1 } }).toArray()
      const below = enabled.length === 0 ? Number.MAX_SAFE_INTEGER : Math.min(...enabled.map(w => w.cursorSeq))
      const old = await changes.find({ _id: { $lt: below }, occurredAt: { $lt: before } }, { projection: { _id: 1 } })
        .sort({ _id: 1 }).limit(limit).toArray()
      if (old.length === 0) return 0
      const { deletedCount } = await changes.deleteMany({ _id: { $in: old.map(d => d._id) } })
      return deletedCount
    }
  }
}
