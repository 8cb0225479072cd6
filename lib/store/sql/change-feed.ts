/**
 * The SQL stores' outbox and webhooks. Records are numbered by a sequence,
 * but sequence numbers are taken in one order and committed in another: the
 * feed therefore reads in (xid, id) order, and only records whose writing
 * transaction (xid) is below the oldest one still running anywhere
 * (pg_snapshot_xmin of the reader's snapshot). Every record below that line
 * is committed or never will be, and every record written later has a
 * higher xid: a reader following its cursor passes nothing and sees nothing
 * twice. A transaction left open holds the feed back (its lag), never
 * reorders it.
 */
import type { ChangeRecord, ChangeType, StoredChange } from '../../domain/changes.ts'
import { InvalidInputError } from '../../domain/errors.ts'
import type { WebhookEndpoint } from '../../domain/webhooks.ts'
import type { ChangeStore } from '../driver.ts'
import type { SqlClient, SqlQueryable } from './client.ts'

const iso = (column: string, as = column): string =>
  `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS ${as}`

/** Records as one JSON array parameter (`$n`): one value to send, whatever the batch's size. */
const recordsFrom = (param: string): string =>
  `ROWS FROM (json_to_recordset(${param}::json) AS (type text, event_id text, owner text, data json, section text))
    WITH ORDINALITY AS r(type, event_id, owner, data, section, n)`

/**
 * The batch write's records, as one more part of its statement: inserted only
 * when `guard` holds, at the batch's moment `at`; a section's data is its row
 * as `upd` wrote it.
 */
export const batchRecordsCte = (param: string, at: string, guard: string): string => `rec AS (
    INSERT INTO changes (type, event_id, event_owner, occurred_at, data)
    SELECT r.type, r.event_id, r.owner, ${at}, coalesce(r.data, (SELECT json_build_object('_id', u.id, 'name', u.name, 'price', u.price::float8,
      'capacity', u.capacity, 'remaining', u.remaining, 'held', u.held, 'sold', u.sold) FROM upd u WHERE u.id = r.section))
    FROM ${recordsFrom(param)}
    WHERE ${guard}
    ORDER BY r.n
    RETURNING 1
  )`

/** The records as the batch write's parameter. */
export const recordsParam = (records: readonly ChangeRecord[]): string =>
  JSON.stringify(records.map(r => ({ type: r.type, event_id: r.eventId, owner: r.owner, data: r.data, section: r.section })))

/** Records written inside a transaction of their change (an event's). */
export async function insertChanges (tx: SqlQueryable, records: readonly ChangeRecord[]): Promise<void> {
  if (records.length === 0) return
  await tx.query(`INSERT INTO changes (type, event_id, event_owner, data)
    SELECT r.type, r.event_id, r.owner, r.data FROM ${recordsFrom('$1')} ORDER BY r.n`, [recordsParam(records)])
}

/** A place in the feed: the writing transaction, then the record's number. */
interface FeedPlace { xid: string, id: string }
const CURSOR = /^(\d{1,20})\.(\d{1,19})$/
const START: FeedPlace = { xid: '0', id: '0' }
const XID_MAX = 2n ** 64n - 1n
const ID_MAX = 2n ** 63n - 1n

function parseCursor (cursor: string | undefined, field: string): FeedPlace {
  if (cursor === undefined) return START
  const match = CURSOR.exec(cursor)
  // xid8 is unsigned 64-bit, the record's number a bigint: out of range is no cursor of ours (and no 500)
  if (match === null || BigInt(match[1]) > XID_MAX || BigInt(match[2]) > ID_MAX) throw new InvalidInputError(field, `${field} must be a cursor this service answered (nextCursor)`)
  return { xid: match[1], id: match[2] }
}
const cursorOf = (place: FeedPlace): string => `${place.xid}.${place.id}`

interface ChangeRow {
  id: string
  xid: string
  type: ChangeType
  occurred_at: string
  event_id: string
  event_owner: string
  data: unknown
}

/** Below every transaction still running: only what is surely committed. */
const SETTLED = 'c.xid < pg_snapshot_xmin(pg_current_snapshot())'

interface WebhookRow {
  id: string
  owner_id: string
  url: string
  types: ChangeType[]
  secret: string
  created_at: string
  cursor_xid: string
  cursor_id: string
  failures: number
  failing_since: string | null
  next_attempt_at: string
  last_error: string | null
  delivered: string
  disabled: boolean
  disabled_reason: string | null
}

const WEBHOOK_COLUMNS = `id, owner_id, url, types, secret, ${iso('created_at')}, cursor_xid::text AS cursor_xid, cursor_id::text AS cursor_id,
  failures, ${iso('failing_since')}, ${iso('next_attempt_at')}, last_error, delivered::text AS delivered, disabled, disabled_reason`

function toWebhook (row: WebhookRow): WebhookEndpoint {
  const endpoint: WebhookEndpoint = {
    _id: row.id,
    owner: row.owner_id,
    url: row.url,
    types: row.types,
    secret: row.secret,
    createdAt: row.created_at,
    cursor: cursorOf({ xid: row.cursor_xid, id: row.cursor_id }),
    failures: row.failures,
    nextAttemptAt: row.next_attempt_at,
    delivered: Number(row.delivered),
    disabled: row.disabled
  }
  if (row.failing_since !== null) endpoint.failingSince = row.failing_since
  if (row.last_error !== null) endpoint.lastError = row.last_error
  if (row.disabled_reason !== null) endpoint.disabledReason = row.disabled_reason
  return endpoint
}

/** A lease is had when nobody holds it, its holder's ran out, or it is the holder's own. */
const LEASE_FREE = '(lease_owner IS NULL OR lease_until < clock_timestamp() OR lease_owner = $1)'

export function sqlChangeStore (client: SqlClient): ChangeStore<AbortSignal> {
  return {
    async listChanges ({ after, limit, types, owner }, signal) {
      const from = parseCursor(after, 'after')
      const params: unknown[] = [from.xid, from.id, limit]
      const where = ['(c.xid, c.id) > ($1::xid8, $2::int8)', SETTLED]
      if (types !== undefined) where.push(`c.type = ANY($${params.push(types)}::text[])`)
      if (owner !== undefined) where.push(`c.event_owner = $${params.push(owner)}`)
      const { rows } = await client.query<ChangeRow>(
        `SELECT c.id::text AS id, c.xid::text AS xid, c.type, ${iso('c.occurred_at', 'occurred_at')}, c.event_id, c.event_owner, c.data
         FROM changes c WHERE ${where.join(' AND ')} ORDER BY c.xid, c.id LIMIT $3`, params, signal)
      const items: StoredChange[] = rows.map(r => ({ id: `chg_${r.id}`, type: r.type, occurredAt: r.occurred_at, eventId: r.event_id, data: r.data, owner: r.event_owner, cursor: cursorOf(r) }))
      const last = rows.at(-1)
      return { items, nextCursor: last === undefined ? cursorOf(from) : cursorOf(last) }
    },

    async createWebhook ({ _id, owner, url, types, secret }, signal) {
      // the feed's head: every transaction below the oldest one running has written all it will
      const { rows } = await client.query<WebhookRow>(
        `INSERT INTO webhooks (id, owner_id, url, types, secret, cursor_xid, cursor_id)
         VALUES ($1, $2, $3, $4, $5, pg_snapshot_xmin(pg_current_snapshot()), 0) RETURNING ${WEBHOOK_COLUMNS}`,
        [_id, owner, url, types, secret], signal)
      return toWebhook(rows[0])
    },

    async listWebhooks (owner, signal) {
      const { rows } = owner === null
        ? await client.query<WebhookRow>(`SELECT ${WEBHOOK_COLUMNS} FROM webhooks ORDER BY created_at, id`, [], signal)
        : await client.query<WebhookRow>(`SELECT ${WEBHOOK_COLUMNS} FROM webhooks WHERE owner_id = $1 ORDER BY created_at, id`, [owner], signal)
      return rows.map(toWebhook)
    },

    async getWebhook (id, signal) {
      const { rows } = await client.query<WebhookRow>(`SELECT ${WEBHOOK_COLUMNS} FROM webhooks WHERE id = $1`, [id], signal)
      return rows.length === 0 ? null : toWebhook(rows[0])
    },

    async deleteWebhook (id, signal) {
      const { rows } = await client.query('DELETE FROM webhooks WHERE id = $1 RETURNING 1', [id], signal)
      return rows.length > 0
    },

    async claimWebhooks (holder, leaseMs, limit, signal) {
      const { rows } = await client.query<WebhookRow>(
        `UPDATE webhooks SET lease_owner = $1, lease_until = clock_timestamp() + $2 * interval '1 millisecond'
         WHERE id IN (SELECT id FROM webhooks WHERE NOT disabled AND next_attempt_at <= clock_timestamp() AND ${LEASE_FREE}
                      ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED)
         RETURNING ${WEBHOOK_COLUMNS}`, [holder, leaseMs, limit], signal)
      return rows.map(toWebhook)
    },

    async saveWebhook (id, holder, progress, leaseMs, signal) {
      const place = parseCursor(progress.cursor, 'cursor')
      const { rows } = await client.query(
        `UPDATE webhooks SET cursor_xid = $3::xid8, cursor_id = $4::int8, failures = $5, failing_since = $6, next_attempt_at = $7,
           last_error = $8, disabled = $9, disabled_reason = $10, delivered = delivered + $11,
           lease_until = clock_timestamp() + $12 * interval '1 millisecond'
         WHERE id = $1 AND lease_owner = $2 AND lease_until >= clock_timestamp() RETURNING 1`,
        [id, holder, place.xid, place.id, progress.failures, progress.failingSince ?? null, progress.nextAttemptAt,
          progress.lastError ?? null, progress.disabled, progress.disabledReason ?? null, progress.delivered, leaseMs], signal)
      return rows.length > 0
    },

    async releaseWebhooks (holder, signal) {
      await client.query('UPDATE webhooks SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1', [holder], signal)
    },

    async pruneChanges (before, limit, signal) {
      // in small batches by the feed's index: a delete never holds many rows, nor any row a booking writes
      const { rows } = await client.query(
        `DELETE FROM changes WHERE ctid = ANY(ARRAY(
           SELECT c.ctid FROM changes c
           WHERE c.occurred_at < $1 AND ${SETTLED}
             AND NOT EXISTS (SELECT 1 FROM webhooks w WHERE NOT w.disabled AND (c.xid, c.id) > (w.cursor_xid, w.cursor_id))
           ORDER BY c.xid, c.id LIMIT $2)) RETURNING 1`, [before, limit], signal)
      return rows.length
    }
  }
}
