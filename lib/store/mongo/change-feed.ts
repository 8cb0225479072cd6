/**
 * The MongoDB store's outbox and webhooks. Records are numbered in commit
 * order: every transaction that records a change increments one counter
 * document last, and of two transactions writing it the later one meets a
 * write conflict until the earlier has committed (then it runs again and
 * takes the next numbers). So no record is ever committed below one already
 * readable, and the feed is simply read by number.
 */
import type { ClientSession, Db } from 'mongodb'
import type { ChangeRecord, ChangeType, StoredChange } from '../../domain/changes.ts'
import { InvalidInputError } from '../../domain/errors.ts'
import type { WebhookEndpoint } from '../../domain/webhooks.ts'
import type { ChangeStore } from '../driver.ts'

export const CHANGES = 'changes'
export const COUNTERS = 'counters'
export const WEBHOOKS = 'webhooks'

export interface ChangeDocument {
  /** its number in the feed */
  _id: number
  type: ChangeType
  occurredAt: Date
  eventId: string
  owner: string
  data: unknown
}

interface CounterDocument { _id: string, seq: number, at: Date }

export interface WebhookDocument {
  _id: string
  owner: string
  url: string
  types: ChangeType[]
  secret: string
  createdAt: Date
  /** the number of the last change delivered (or given up) */
  cursor: number
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
export async function appendChanges (db: Db, session: ClientSession, records: readonly ChangeRecord[], at?: Date): Promise<void> {
  if (records.length === 0) return
  const counter = await db.collection<CounterDocument>(COUNTERS).findOneAndUpdate({ _id: CHANGES },
    [{ $set: { seq: { $add: [{ $ifNull: ['$seq', 0] }, records.length] }, at: '$$NOW' } }],
    { session, upsert: true, returnDocument: 'after' })
  if (counter === null) throw new Error('the change counter was not written')
  const first = counter.seq - records.length + 1
  await db.collection<ChangeDocument>(CHANGES).insertMany(records.map((r, i) => ({
    _id: first + i, type: r.type, occurredAt: at ?? counter.at, eventId: r.eventId, owner: r.owner, data: r.data
  })), { session })
}

const CURSOR = /^\d{1,15}$/
function parseCursor (cursor: string | undefined, field: string): number {
  if (cursor === undefined) return 0
  if (!CURSOR.test(cursor)) throw new InvalidInputError(field, `${field} must be a cursor this service answered (nextCursor)`)
  return Number(cursor)
}

function toWebhook (doc: WebhookDocument): WebhookEndpoint {
  const endpoint: WebhookEndpoint = {
    _id: doc._id,
    owner: doc.owner,
    url: doc.url,
    types: doc.types,
    secret: doc.secret,
    createdAt: doc.createdAt.toISOString(),
    cursor: String(doc.cursor),
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
      const docs = await changes.find({
        _id: { $gt: from },
        ...(types === undefined ? {} : { type: { $in: [...types] } }),
        ...(owner === undefined ? {} : { owner })
      }).sort({ _id: 1 }).limit(limit).toArray()
      const items: StoredChange[] = docs.map(d => ({ id: `chg_${d._id}`, type: d.type, occurredAt: d.occurredAt.toISOString(), eventId: d.eventId, data: d.data, owner: d.owner, cursor: String(d._id) }))
      return { items, nextCursor: String(docs.at(-1)?._id ?? from) }
    },

    async createWebhook ({ _id, owner, url, types, secret }) {
      // the feed's head: numbers are taken in commit order, so every later record is above it
      const head = await counters.findOne({ _id: CHANGES })
      const now = await serverNow()
      const doc: WebhookDocument = {
        _id, owner, url, types, secret, createdAt: now, cursor: head?.seq ?? 0, failures: 0, nextAttemptAt: now, delivered: 0, disabled: false
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
        cursor: parseCursor(progress.cursor, 'cursor'),
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
      const enabled = await webhooks.find({ disabled: false }, { projection: { cursor: 1 } }).toArray()
      const below = enabled.length === 0 ? Number.MAX_SAFE_INTEGER : Math.min(...enabled.map(w => w.cursor)) + 1
      const old = await changes.find({ _id: { $lt: below }, occurredAt: { $lt: before } }, { projection: { _id: 1 } })
        .sort({ _id: 1 }).limit(limit).toArray()
      if (old.length === 0) return 0
      const { deletedCount } = await changes.deleteMany({ _id: { $in: old.map(d => d._id) } })
      return deletedCount
    }
  }
}
