/**
 * The waiting list across instances, against real processes: three instances
 * on PostgreSQL + Redis sell a 40-seat section out, 60 users join its list
 * (1 to 4 seats each), then for 15 s bookings are cancelled and held seats
 * released and left to expire, while 50 loops keep trying public bookings
 * and a box office confirms about half of the offers it sees (the others
 * lapse after 2 s and go on to the next in line). Once every offer has ended:
 * each offer is in the change feed once, offers follow the list's positions
 * (no entry waits while a later one of as many seats or more is offered), no
 * public booking took a seat while an entry of one seat waited, no user holds
 * plus has more than maxPerUser, every offer's hold decided its entry, and the
 * section's seats add up.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { createTestDatabase, withSql } from '../helpers/databases.ts'
import { urlClient, type ApiClient } from '../helpers/http-client.ts'
import { checkViaSql } from '../helpers/invariant.ts'
import { mapLimit } from '../helpers/map-limit.ts'
import { pollUntil } from '../helpers/poll.ts'
import { startServer } from '../helpers/server-process.ts'
import { missing, REDIS_URL } from '../helpers/services.ts'
import { textTable } from '../helpers/text-table.ts'
import { principals } from '../helpers/tokens.ts'

const CAPACITY = 40
/** of the sell-out, the last ones are holds (they expire during the load); the others are confirmed */
const HOLDS = 10
const WAITERS = 60
/** waiting entries that leave before seats come back */
const LEAVERS = 3
/** confirmed bookings cancelled, and holds released, spread over the load */
const CANCELS = 20
const RELEASES = 3
const PUBLIC_LOOPS = 50
const LOAD_MS = 15_000
const OFFER_SECONDS = 2
/** long enough for every join to find the section sold out; short enough to expire during the load */
const HOLD_SECONDS = 6
const MAX_PER_USER = 6
const POLL_MS = 200
const SEED = 0x5eed_2026

/** A small seeded PRNG (mulberry32): the same run every time. */
function prng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = a
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

interface Entry {
  _id: string
  eventId: string
  sectionId: string
  userId: string
  qty: number
  position: number
  status: string
  bookingId?: string
  createdAt: string
}

interface Change { id: string, type: string, occurredAt: string, eventId: string, data: any }

/** Every change in the feed, following nextCursor until an empty page. */
async function readFeed (client: ApiClient): Promise<Change[]> {
  const items: Change[] = []
  let after = ''
  for (;;) {
    const res = await client.request('GET', `/api/changes?limit=100${after}`)
    if (res.status !== 200) throw new Error(`feed answered ${res.status}: ${res.text}`)
    items.push(...res.body.data.items)
    if (res.body.data.items.length === 0) return items
    after = `&after=${res.body.data.nextCursor}`
  }
}

/** Every entry of the event's waiting lists, page by page (nextCursor as `cursor`). */
async function readEntries (client: ApiClient, eventId: string, limit = 100): Promise<Entry[]> {
  const items: Entry[] = []
  let cursor = ''
  for (;;) {
    const res = await client.request('GET', `/api/events/${eventId}/waitlist?limit=${limit}${cursor}`)
    if (res.status !== 200) throw new Error(`waitlist answered ${res.status}: ${res.text}`)
    items.push(...res.body.data.items)
    if (res.body.data.nextCursor === null) return items
    cursor = `&cursor=${res.body.data.nextCursor}`
  }
}

t.test('3 instances, a sold-out section, 60 waiting: seats that come back are offered in order, never sold past the list', { skip: await missing('postgres', 'redis') }, async t => {
  const random = prng(SEED)
  const databaseUrl = await createTestDatabase(t)
  const env = { DATABASE_URL: databaseUrl, REDIS_NODES: REDIS_URL, EXPIRY_SWEEP_MS: '200' }
  const servers = await Promise.all([1, 2, 3].map(async () => await startServer(env)))
  t.teardown(async () => { await Promise.all(servers.map(async s => await s.stop())) })
  const as = await principals()
  const clients = servers.map(s => urlClient(s.url, { headers: as.service }))
  const any = (): ApiClient => clients[Math.floor(random() * clients.length)]
  const organizer = urlClient(servers[0].url, { headers: as.organizer })

  const made = await organizer.request('POST', '/api/events', {
    name: 'Waiting list',
    sections: [{ name: 'Floor', price: 25, capacity: CAPACITY }],
    holdSeconds: HOLD_SECONDS,
    maxPerUser: MAX_PER_USER,
    waitlistOfferSeconds: OFFER_SECONDS
  })
  t.equal(made.status, 201, 'the event is made')
  const eventId: string = made.body.data._id
  const sectionId: string = made.body.data.sections[0]._id
  t.equal(made.body.data.waitlistOfferSeconds, OFFER_SECONDS, 'with its offers\' length')

  // sold out: confirmed bookings first, the holds last (they must outlast the joins)
  const sell = async (i: number): Promise<string> => {
    const res = await any().request('POST', '/api/bookings', { eventId, sectionId, qty: 1, userId: `buyer-${i}`, hold: i >= CAPACITY - HOLDS })
    if (res.status !== 201) throw new Error(`buyer-${i} answered ${res.status}: ${res.text}`)
    return res.body.data._id
  }
  const confirmedIds = await mapLimit(Array.from({ length: CAPACITY - HOLDS }, (_, i) => i), 10, sell)
  const heldIds = await mapLimit(Array.from({ length: HOLDS }, (_, i) => CAPACITY - HOLDS + i), 10, sell)
  const soldOut = await any().request('POST', '/api/bookings', { eventId, sectionId, qty: 1, userId: 'public-probe' })
  t.match(soldOut, { status: 409, body: { error: { code: 'SOLD_OUT' } } }, 'the section is sold out')

  // 60 users join, 1 to 4 seats each, through any instance
  const qtys = Array.from({ length: WAITERS }, () => 1 + Math.floor(random() * 4))
  const joins = await mapLimit(qtys, 10, async (qty, i) => await any().request('POST', `/api/events/${eventId}/waitlist`, { sectionId, qty, userId: `wait-${i}` }))
  t.same(joins.map(r => r.status).filter(s => s !== 201), [], `all ${WAITERS} joins answered 201`)
  const joined: Entry[] = joins.map(r => r.body.data)
  t.ok(joined.every((e, i) => e.status === 'waiting' && e.userId === `wait-${i}` && e.qty === qtys[i] && e.bookingId === undefined), 'each a waiting entry of its user and qty')
  t.same(joined.map(e => e.position).sort((a, b) => a - b), Array.from({ length: WAITERS }, (_, i) => i + 1), 'positions 1..60, each once')
  const again = await any().request('POST', `/api/events/${eventId}/waitlist`, { sectionId, qty: qtys[0], userId: 'wait-0' })
  t.match(again, { status: 200, body: { data: { _id: joined[0]._id, position: joined[0].position } } }, 'joining again answers the entry already there')
  const overCap = await any().request('POST', `/api/events/${eventId}/waitlist`, { sectionId, qty: MAX_PER_USER, userId: 'buyer-0' })
  t.match(overCap, { status: 409, body: { error: { code: 'LIMIT_EXCEEDED', allowed: MAX_PER_USER - 1 } } }, 'a join past maxPerUser is refused')
  const asOrganizer = await readEntries(organizer, eventId, 7)
  t.same(asOrganizer.map(e => e._id), [...joined].sort((a, b) => a.position - b.position).map(e => e._id), 'the organizer sees every entry in position order, page by page')

  // a few leave before any seat comes back
  const leaving = new Set<number>()
  while (leaving.size < LEAVERS) leaving.add(Math.floor(random() * WAITERS))
  for (const i of leaving) {
    const res = await any().request('DELETE', `/api/waitlist/${joined[i]._id}`)
    t.match(res, { status: 200, body: { data: { _id: joined[i]._id, status: 'left' } } }, `wait-${i} leaves`)
  }

  // the returns: confirmed bookings cancelled over the load, holds released early (the rest expire)
  const cancelPick = confirmedIds.map(id => ({ id, key: random() })).sort((a, b) => a.key - b.key).slice(0, CANCELS).map(c => c.id)
  const returns = [
    ...cancelPick.map(id => ({ id, at: 500 + random() * (LOAD_MS - 3000) })),
    ...heldIds.slice(0, RELEASES).map(id => ({ id, at: 200 + random() * 1500 }))
  ].sort((a, b) => a.at - b.at)
  const confirmEvery = (e: Entry): boolean => e.position % 2 === 0

  let loadOver = false
  let drained = false
  // a failed step ends the loops too
  t.teardown(() => { loadOver = true; drained = true })
  const started = Date.now()
  const returning = mapLimit(returns, 4, async ({ id, at }) => {
    await sleep(Math.max(0, started + at - Date.now()))
    const res = await any().request('POST', `/api/bookings/${id}/cancel`)
    return res.status === 200 ? 'returned' : `cancel ${res.status} ${res.text}`
  })
  const publicCreated: Array<{ id: string, at: number, userId: string }> = []
  const publicOther = new Map<string, number>()
  const publicLoops = Promise.all(Array.from({ length: PUBLIC_LOOPS }, async (_, k) => {
    const loopRandom = prng(SEED + 1 + k)
    const userId = `public-${k}`
    while (!loadOver) {
      const res = await clients[Math.floor(loopRandom() * clients.length)].request('POST', '/api/bookings', { eventId, sectionId, qty: 1, userId })
      if (res.status === 201) publicCreated.push({ id: res.body.data._id, at: Date.now() - started, userId })
      else {
        const key = `${res.status} ${res.body.error?.code ?? ''}`
        publicOther.set(key, (publicOther.get(key) ?? 0) + 1)
      }
      await sleep(10 + loopRandom() * 20)
    }
  }))
  // the box office: sees offers, confirms about half, leaves the rest to lapse
  const seen = new Set<string>()
  const confirms = new Map<string, number>()
  const boxOffice = (async () => {
    const office = clients[1]
    while (!drained) {
      for (const e of await readEntries(office, eventId)) {
        if (e.status !== 'offered' || seen.has(e._id)) continue
        seen.add(e._id)
        if (!confirmEvery(e)) continue
        const res = await office.request('POST', `/api/bookings/${e.bookingId as string}/confirm`, { paymentRef: `pay-${e.position}` })
        confirms.set(e._id, res.status)
      }
      await sleep(POLL_MS)
    }
  })()

  await sleep(LOAD_MS)
  loadOver = true
  await publicLoops
  const returned = await returning
  t.same(returned.filter(r => r !== 'returned'), [], `all ${returns.length} cancels and releases answered 200`)
  const allowed = new Set(['409 SOLD_OUT', '409 LIMIT_EXCEEDED', '503 BUSY'])
  t.same([...publicOther.keys()].filter(k => !allowed.has(k)), [], 'public bookings answered 201, SOLD_OUT or LIMIT_EXCEEDED (or BUSY)')

  // every offer ended, every hold gone
  await pollUntil('every offer ended and every hold gone', async () => await withSql(databaseUrl, async sql => {
    const [{ offered, held }] = await sql.query<{ offered: number, held: number }>(
      `SELECT (SELECT count(*)::int FROM waitlist WHERE event_id = $1 AND status = 'offered') AS offered,
              (SELECT count(*)::int FROM bookings WHERE event_id = $1 AND status = 'held') AS held`, [eventId])
    return offered === 0 && held === 0 ? true : undefined
  }), { everyMs: 250, timeoutMs: 25_000 })
  drained = true
  await boxOffice
  const runMs = Date.now() - started

  const entries = await readEntries(clients[2], eventId, 25)
  t.equal(entries.length, WAITERS, 'every entry listed (pages of 25)')
  const offeredEntries = entries.filter(e => e.bookingId !== undefined)
  const byBooking = new Map(offeredEntries.map(e => [e.bookingId as string, e]))

  // the feed: read until it has an offer record for each entry offered and each public booking (a transaction still open elsewhere may hold it back a moment)
  const feed = await pollUntil('the feed to show every offer', async () => {
    const all = await readFeed(clients[0])
    const publics = all.filter(c => c.type === 'booking.confirmed' && String(c.data.userId).startsWith('public-')).length
    return all.filter(c => c.type === 'waitlist.offered').length >= offeredEntries.length && publics >= publicCreated.length ? all : undefined
  }, { everyMs: 250, timeoutMs: 10_000 })
  t.ok(feed.every(c => c.eventId === eventId), 'the feed holds this event\'s changes only')
  const offerAt = new Map<string, number>()
  const offerRecords = feed.flatMap((c, i) => c.type === 'waitlist.offered' ? [{ entry: c.data as Entry, i }] : [])
  for (const { entry, i } of offerRecords) offerAt.set(entry._id, i)
  // (a) one waitlist.offered per entry with a bookingId
  t.equal(offerRecords.length, offeredEntries.length, `one waitlist.offered change per entry offered (${offeredEntries.length})`)
  t.same(offerRecords.map(r => r.entry._id).sort(), offeredEntries.map(e => e._id).sort(), 'the same entries')
  t.ok(offerRecords.every(({ entry }) => entry.status === 'offered' && byBooking.get(entry.bookingId as string)?._id === entry._id), 'each record is its entry, offered, with its hold')
  // an offer's hold, in the feed before any booking its batch took afterwards
  const holdAt = new Map<string, number>()
  feed.forEach((c, i) => { if (c.type === 'booking.held' && byBooking.has(c.data._id)) holdAt.set(byBooking.get(c.data._id)?._id as string, i) })
  t.equal(holdAt.size, offeredEntries.length, 'each offer\'s hold has its booking.held change')

  // (b) entries of the same qty are offered in position order
  let pairs = 0
  const outOfOrder: string[] = []
  for (const a of offeredEntries) {
    for (const b of offeredEntries) {
      if (a.qty !== b.qty || a.position >= b.position) continue
      pairs++
      if ((offerAt.get(a._id) as number) > (offerAt.get(b._id) as number)) outOfOrder.push(`#${b.position} offered before #${a.position} (qty ${a.qty})`)
    }
  }
  t.same(outOfOrder, [], `same-qty offers in position order (${pairs} pairs)`)

  // (c) no entry waited while a later one of as many seats or more was offered
  const waitedAt = (w: Entry, i: number): boolean => w.status === 'waiting' || (offerAt.has(w._id) && (offerAt.get(w._id) as number) > i)
  const passedOver: string[] = []
  for (const o of offeredEntries) {
    const i = offerAt.get(o._id) as number
    for (const w of entries) {
      if (w.status === 'left' || w.status === 'skipped' || w.position >= o.position || w.qty > o.qty) continue
      if (waitedAt(w, i)) passedOver.push(`#${w.position} (qty ${w.qty}) still waiting when #${o.position} (qty ${o.qty}) was offered`)
    }
  }
  t.same(passedOver, [], 'no entry passed over by a later one it fitted as well')

  // public bookings while an entry of one seat waited: by the feed's order and by the database's clock
  const publicInFeed = feed.flatMap((c, i) => c.type === 'booking.confirmed' && String(c.data.userId).startsWith('public-') ? [i] : [])
  t.equal(publicInFeed.length, publicCreated.length, 'each public 201 is in the feed')
  const singlesOrMore = entries.filter(e => e.status !== 'left' && e.status !== 'skipped')
  const singles = singlesOrMore.filter(e => e.qty === 1)
  const duringWaitsFeed = publicInFeed.filter(p => singles.some(w => w.status === 'waiting' || (holdAt.get(w._id) as number) > p)).length
  t.equal(duringWaitsFeed, 0, 'no public booking in the feed while an entry of one seat waited')

  // stronger, by replaying the section's seats along the feed: before each public booking, r seats were free, and no waiting entry of qty <= r
  let free = CAPACITY
  let negative = 0
  const statusOf = new Map<string, string>()
  const publicPassed: string[] = []
  feed.forEach((c, i) => {
    if (!c.type.startsWith('booking.')) return
    const before = statusOf.get(c.data._id)
    const taking = (s: string | undefined): boolean => s === 'held' || s === 'confirmed'
    if (taking(c.data.status) && !taking(before)) {
      if (String(c.data.userId).startsWith('public-')) {
        const fit = singlesOrMore.find(w => w.qty <= free && (w.status === 'waiting' || (holdAt.get(w._id) as number) > i))
        if (fit !== undefined) publicPassed.push(`${c.data.userId} took 1 of ${free} free seats while #${fit.position} (qty ${fit.qty}) waited`)
      }
      free -= c.data.qty
    } else if (!taking(c.data.status) && taking(before)) free += c.data.qty
    if (free < 0) negative++
    statusOf.set(c.data._id, c.data.status)
  })
  t.same(publicPassed, [], 'replayed along the feed: no public booking took a seat while a waiting entry fitted the seats free')
  t.equal(negative, 0, 'replayed along the feed: free seats never below zero')

  const db = await withSql(databaseUrl, async sql => {
    const [{ during }] = await sql.query<{ during: number }>(
      `SELECT count(DISTINCT p.id)::int AS during
       FROM bookings p
       JOIN waitlist w ON w.section_id = p.section_id AND w.qty = 1 AND w.status NOT IN ('left', 'skipped') AND w.created_at < p.created_at
       LEFT JOIN bookings o ON o.id = w.booking_id
       WHERE p.event_id = $1 AND p.user_id LIKE 'public-%' AND (w.status = 'waiting' OR o.created_at > p.created_at)`, [eventId])
    const [{ publicRows }] = await sql.query<{ publicRows: number }>(
      "SELECT count(*)::int AS \"publicRows\" FROM bookings WHERE event_id = $1 AND user_id LIKE 'public-%'", [eventId])
    const overCap = await sql.query<{ user_id: string, seats: number }>(
      `SELECT user_id, sum(qty)::int AS seats FROM bookings WHERE event_id = $1 AND status IN ('held', 'confirmed')
       GROUP BY user_id HAVING sum(qty) > $2`, [eventId, MAX_PER_USER])
    const [{ maxSeats }] = await sql.query<{ maxSeats: number }>(
      `SELECT coalesce(max(s), 0)::int AS "maxSeats" FROM (SELECT sum(qty) AS s FROM bookings WHERE event_id = $1 AND status IN ('held', 'confirmed') GROUP BY user_id) u`, [eventId])
    const outcomes = await sql.query<{ entry: string, booking: string, count: number }>(
      `SELECT w.status AS entry, b.status AS booking, count(*)::int AS count FROM waitlist w JOIN bookings b ON b.id = w.booking_id
       WHERE w.event_id = $1 AND b.waitlist_id = w.id AND b.user_id = w.user_id AND b.qty = w.qty GROUP BY 1, 2 ORDER BY 1, 2`, [eventId])
    const [{ waitingCounter, waitingRows }] = await sql.query<{ waitingCounter: number, waitingRows: number }>(
      `SELECT (SELECT waiting FROM sections WHERE id = $1) AS "waitingCounter",
              (SELECT count(*)::int FROM waitlist WHERE section_id = $1 AND status = 'waiting') AS "waitingRows"`, [sectionId])
    return { during, publicRows, overCap, maxSeats, outcomes, waitingCounter, waitingRows, invariant: await checkViaSql(sql, eventId) }
  })
  t.equal(db.during, 0, 'no public booking made, by the database\'s clock, while an entry of one seat waited')
  t.equal(db.publicRows, publicCreated.length, 'the public bookings stored are the 201s')
  t.same(db.invariant.problems, [], 'invariant via SQL: capacity == remaining + held + sold')
  t.equal(free, db.invariant.sections[0].remaining, 'the replay ends with the section\'s remaining seats')
  t.same(db.overCap, [], `no user holds plus has more than ${MAX_PER_USER} seats`)
  t.equal(db.waitingCounter, db.waitingRows, 'the section counts its waiting entries')

  // every offer ended, its hold deciding its entry
  t.equal(entries.filter(e => e.status === 'offered').length, 0, 'no entry still offered')
  const pairsSeen = db.outcomes.map(o => `${o.entry}/${o.booking}`)
  t.same(pairsSeen.filter(p => !['confirmed/confirmed', 'lapsed/expired', 'left/cancelled'].includes(p)), [], 'each offer\'s hold confirmed (entry confirmed) or expired (entry lapsed)')
  t.equal(db.outcomes.reduce((n, o) => n + o.count, 0), offeredEntries.length, 'each offered entry names its own hold (user, qty, waitlistId)')
  t.same([...confirms].filter(([, status]) => status !== 200), [], `the box office's ${confirms.size} confirms answered 200`)
  t.ok([...confirms.keys()].every(id => entries.find(e => e._id === id)?.status === 'confirmed'), 'each offer confirmed is an entry confirmed')
  t.ok(offeredEntries.filter(e => !confirms.has(e._id)).every(e => e.status === 'lapsed'), 'each offer left alone lapsed')
  t.equal(entries.filter(e => e.status === 'left').length, LEAVERS, `the ${LEAVERS} who left stay left`)
  t.ok(offeredEntries.some(e => e.status === 'lapsed') && offeredEntries.some(e => e.status === 'confirmed'), 'offers both confirmed and lapsed')

  const seatsOf = (type: string): number => feed.filter(c => c.type === type).reduce((n, c) => n + (c.data?.qty as number), 0)
  const seatsReturned = seatsOf('booking.cancelled') + seatsOf('booking.expired')
  t.comment(textTable([
    ['seats returned', 'offers made', 'offers in order', 'confirmed', 'lapsed', 'still waiting (qty 1/2/3/4)', 'public 201s after sell-out', 'public 201s during waits', 'public 409s', 'max seats per user', 'load + drain'],
    [seatsReturned, offeredEntries.length, outOfOrder.length + passedOver.length === 0 ? `all (${pairs} same-qty pairs)` : `${outOfOrder.length + passedOver.length} violations`,
      entries.filter(e => e.status === 'confirmed').length, entries.filter(e => e.status === 'lapsed').length, [1, 2, 3, 4].map(q => entries.filter(e => e.status === 'waiting' && e.qty === q).length).join('/'),
      publicCreated.length, duringWaitsFeed + db.during + publicPassed.length,
      [...publicOther].map(([k, v]) => `${k} ${v}`).join(', '), db.maxSeats, `${(runMs / 1000).toFixed(1)} s`].map(String)
  ]))
})
