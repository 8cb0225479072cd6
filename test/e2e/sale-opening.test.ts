/**
 * A sale opening under a crowd, against real processes: three instances on one
 * fresh PostgreSQL database and the machine's Redis. The event goes on sale 3 s
 * after it is created; 100 connections, spread over the instances, book one
 * seat after another from 2 s before the opening to 5 s after it. Before the
 * opening every booking is 409 SALE_NOT_OPEN with the event's salesStart as
 * opensAt; from it on seats are sold until SOLD_OUT. The database's clock
 * decides: no stored booking was made before sales_start, and no request sent
 * after a 201 was answered is told the sale is not open. Never a 500.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import type { EventView } from '../helpers/create-event.ts'
import { createTestDatabase, withSql } from '../helpers/databases.ts'
import { urlClient } from '../helpers/http-client.ts'
import { checkViaApi, checkViaSql } from '../helpers/invariant.ts'
import { startServer } from '../helpers/server-process.ts'
import { missing, REDIS_URL } from '../helpers/services.ts'
import { textTable } from '../helpers/text-table.ts'
import { principals } from '../helpers/tokens.ts'

const CAPACITY = 300
const CONNECTIONS = 100
/** the sale opens this long after the event is created */
const OPENS_AFTER_MS = 3000
/** the crowd books from this long before the opening ... */
const LOAD_BEFORE_MS = 2000
/** ... to this long after it */
const LOAD_AFTER_MS = 5000

/** One booking request as the client saw it: status 0 when no answer came. */
interface Answer { status: number, code?: string, opensAt?: string, id?: string, start: number, end: number, text: string }

const skip = await missing('postgres', 'redis')
if (skip !== undefined) console.log(`# SKIPPED sale opening across instances: ${skip}`)

t.test('a sale opening under 100 connections on three instances', { skip }, async t => {
  const as = await principals()
  const databaseUrl = await createTestDatabase(t)
  const env = { DATABASE_URL: databaseUrl, REDIS_NODES: REDIS_URL }
  const servers = await Promise.all([0, 1, 2].map(async () => await startServer(env)))
  t.teardown(async () => { await Promise.all(servers.map(async s => await s.stop())) })
  const clients = servers.map(s => urlClient(s.url, { headers: as.service }))
  const organizer = urlClient(servers[0].url, { headers: as.organizer })

  // the opening in the API's one form (UTC, milliseconds): opensAt must be this very text
  const salesStart = new Date(Date.now() + OPENS_AFTER_MS).toISOString()
  const res = await organizer.request<EventView>('POST', '/api/events', {
    name: 'Opening night', salesStart, sections: [{ name: 'Floor', price: 40, capacity: CAPACITY }]
  })
  t.equal(res.status, 201, 'event created')
  const event = res.body.data!
  const eventId = event._id
  const sectionId = event.sections[0]._id
  t.equal(event.salesStart, salesStart, 'the event answers salesStart as sent')
  t.equal(event.saleState, 'not_open', 'not open yet')
  const opening = Date.parse(salesStart)

  await sleep(Math.max(0, opening - LOAD_BEFORE_MS - Date.now()))
  const loadStart = Date.now()
  const loadEnd = opening + LOAD_AFTER_MS
  const answers: Answer[] = []
  let serial = 0
  await Promise.all(Array.from({ length: CONNECTIONS }, async (_, c) => {
    const client = clients[c % clients.length]
    while (Date.now() < loadEnd) {
      const userId = `crowd-${c}-${serial++}`
      const start = Date.now()
      try {
        const res = await client.request('POST', '/bookings', { eventId, sectionId, qty: 1, userId })
        const end = Date.now()
        let body: any
        try { body = res.body } catch {}
        // the text only of an unexpected answer: a flood of refusals would keep megabytes of it
        const text = res.status === 201 || res.status === 409 || res.status === 503 ? '' : res.text.slice(0, 200)
        answers.push({ status: res.status, code: body?.error?.code, opensAt: body?.error?.opensAt, id: body?.data?._id, start, end, text })
      } catch (err) {
        answers.push({ status: 0, start, end: Date.now(), text: String(err) })
      }
    }
  }))
  const stoppedAt = Date.now()

  const kind = (a: Answer): string =>
    a.status === 201 ? 'created'
      : a.status === 409 && (a.code === 'SALE_NOT_OPEN' || a.code === 'SOLD_OUT') ? a.code
        : a.status === 503 && a.code === 'BUSY' ? 'BUSY' : 'other'
  const created = answers.filter(a => kind(a) === 'created')
  const notOpen = answers.filter(a => kind(a) === 'SALE_NOT_OPEN')
  const other = answers.filter(a => kind(a) === 'other')
  // (reduce, not Math.min(...list): a list of 100,000s would overflow the stack)
  const earliest = (list: number[]): number => list.reduce((m, x) => Math.min(m, x), Infinity)
  const latest = (list: number[]): number => list.reduce((m, x) => Math.max(m, x), -Infinity)

  t.same(other.slice(0, 5).map(a => `${a.status} ${a.code ?? ''} ${a.text}`), [], `only 201, 409 SALE_NOT_OPEN, 409 SOLD_OUT, 503 BUSY (${other.length} others)`)
  t.equal(answers.filter(a => a.status >= 500 && a.status !== 503).length, 0, 'never a 500')
  t.ok(created.length >= 1, `seats sold once the sale opened (${created.length})`)
  t.ok(created.length <= CAPACITY, 'never more than the capacity')
  t.ok(notOpen.length >= 1, `bookings refused before the opening (${notOpen.length})`)
  const wrongOpensAt = notOpen.filter(a => a.opensAt !== salesStart)
  t.same(wrongOpensAt.slice(0, 5).map(a => a.opensAt), [], `every SALE_NOT_OPEN carries opensAt ${salesStart}`)

  // the database decides one moment for all: once a seat was sold (answered), a request sent after it finds the sale open
  const firstSold = earliest(created.map(a => a.end))
  const lateRefusals = notOpen.filter(a => a.start > firstSold)
  t.same(lateRefusals.slice(0, 5).map(a => new Date(a.start).toISOString()), [], 'no SALE_NOT_OPEN for a request sent after a 201 was answered')

  // the database's clock: no booking stored before its event's sales_start
  const early = await withSql(databaseUrl, async sql => await sql.query<{ count: number }>(
    'SELECT count(*)::int AS count FROM bookings b JOIN events e ON e.id = b.event_id WHERE b.created_at < e.sales_start'))
  t.equal(early[0].count, 0, 'no stored booking has created_at < sales_start')

  // the invariant: capacity == remaining + held + sold, every 201 stored
  const ids = created.map(a => a.id!)
  const sql = await withSql(databaseUrl, async sql => await checkViaSql(sql, eventId, { created: created.length }))
  t.same(sql.problems, [], 'invariant in PostgreSQL')
  const api = await checkViaApi(clients[1], eventId, { expected: { created: created.length, ids } })
  t.same(api.problems, [], `invariant through the API (${created.length} bookings)`)

  // the figures (printed, not asserted: speed belongs to the benchmarks)
  const before = answers.filter(a => a.start < opening)
  const after = answers.filter(a => a.start >= opening)
  const rate = (n: number, ms: number): string => ms <= 0 ? '-' : String(Math.round(n / (ms / 1000)))
  const statusCounts = (list: Answer[]): string => {
    const counts = new Map<string, number>()
    for (const a of list) {
      const key = a.status === 201 ? '201' : `${a.status} ${a.code ?? ''}`.trim()
      counts.set(key, (counts.get(key) ?? 0) + 1)
    }
    return [...counts].map(([k, n]) => `${k}: ${n}`).join(', ')
  }
  t.comment(`first 201 answered ${firstSold - opening} ms after salesStart (client's clock); last SALE_NOT_OPEN sent ${latest(notOpen.map(a => a.start)) - opening} ms from it`)
  t.comment(textTable([
    ['window', 'requests', 'requests/s', 'answers'],
    ['before salesStart', String(before.length), rate(before.length, opening - loadStart), statusCounts(before)],
    ['from salesStart', String(after.length), rate(after.length, stoppedAt - opening), statusCounts(after)]
  ]))
})
