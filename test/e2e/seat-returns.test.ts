/**
 * Seat returns across instances, against real processes: three
 * instances on one fresh PostgreSQL database and the same lock servers, each
 * remembering a sold-out section for a minute (SOLD_OUT_CACHE_MS=60000, so a
 * stale memory would surely show). Every cycle sells a 5-seat section out,
 * has every instance answer it sold out from memory, gives seats back on
 * instance A (a cancelled booking, a released hold, an expired hold) and, as
 * soon as that return is answered, races qty-1 bookings on B and C: the
 * returned seats must be sold on the first attempt, and no 409 may be given
 * while the database still had a seat (after the race the section must be at
 * 0 with exactly as many 201s as seats returned). Run with the machine's
 * Redis, then with three throwaway redis-servers of which the test stops one.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { createEvent, type EventView } from '../helpers/create-event.ts'
import { createTestDatabase, withSql } from '../helpers/databases.ts'
import { urlClient, type ApiClient, type ApiResponse } from '../helpers/http-client.ts'
import { checkViaApi, checkViaSql } from '../helpers/invariant.ts'
import { scrapeUrl, total } from '../helpers/prometheus-text.ts'
import { redisServerAvailable, throwawayRedis } from '../helpers/redis-server.ts'
import { startServer, type ServerProcess } from '../helpers/server-process.ts'
import { missing, REDIS_URL } from '../helpers/services.ts'
import { textTable } from '../helpers/text-table.ts'
import { principals } from '../helpers/tokens.ts'

// an organizer creates the events; a service (a box office) books, cancels and lists on behalf of the test's users
const as = await principals()

const CAPACITY = 5
const CYCLES_PER_KIND = 10
/** qty-1 bookings raced on B and C after each return: more than any return gives back */
const RACERS = 6
/** How long a poll may wait for a sweep to be counted (a bound for polling, not a measured threshold). */
const SETTLE_MS = 30_000

type Kind = 'cancel' | 'release' | 'expiry: sweeper' | 'expiry: batch on A'

/**
 * The table's rows. Expiry cycles alternate between the two ways a hold's
 * return is answered: the sweeper counts it (on whichever instance sweeps), or
 * a cancel on A after expiresAt, whose batch expires the hold before it
 * answers; when the sweeper was first even so, the cycle counts as the sweeper's.
 */
const KINDS: readonly Kind[] = ['cancel', 'release', 'expiry: sweeper', 'expiry: batch on A']

interface Instance { name: string, server: ServerProcess, client: ApiClient }

interface Cycle {
  kind: Kind
  /** seats given back on A */
  returned: number
  /** 201s of the race: each a first attempt */
  created: number
  /** 409s of the race */
  soldOut: number
  /** any other answer of the race */
  other: string[]
  /** seats the section still had after the race: each a 409 given while the database had the seat */
  falseSoldOut: number
  /** sold_out_invalidations_total on B and C during the return and the race */
  invalidations: number
}

/** What the cycles read off each instance's /metrics. */
interface Reading { memory: number, invalidations: number, expiredSeats: number }

async function readMetrics (instances: Instance[]): Promise<Reading[]> {
  return await Promise.all(instances.map(async ({ server }) => {
    const e = await scrapeUrl(server.url)
    return {
      memory: total(e, 'sold_out_answers_total', { source: 'memory' }),
      invalidations: total(e, 'sold_out_invalidations_total'),
      expiredSeats: total(e, 'hold_expired_seats_total')
    }
  }))
}

const sum = (readings: Reading[], field: keyof Reading): number => readings.reduce((n, r) => n + r[field], 0)

async function book (client: ApiClient, eventId: string, sectionId: string, qty: number, userId: string, hold = false): Promise<ApiResponse> {
  return await client.request('POST', '/bookings', { eventId, sectionId, qty, userId, ...(hold ? { hold: true } : {}) })
}

async function remainingOf (client: ApiClient, eventId: string, sectionId: string): Promise<number> {
  const res = await client.request<EventView>('GET', `/api/events/${eventId}`)
  const section = res.body.data?.sections.find(s => s._id === sectionId)
  if (res.status !== 200 || section === undefined) throw new Error(`GET /api/events/${eventId} answered ${res.status}: ${res.text}`)
  return section.remaining
}

/** Polls the instances' hold_expired_seats_total (summed) until it reaches `target`; returns the last sum. */
async function expiredSeatsReach (instances: Instance[], target: number): Promise<number> {
  const deadline = Date.now() + SETTLE_MS
  for (;;) {
    const seats = sum(await readMetrics(instances), 'expiredSeats')
    if (seats >= target || Date.now() > deadline) return seats
    await sleep(20)
  }
}

/** A section sold out on A and remembered sold out by every instance, with a booking of `returned` seats to give back. */
interface Prepared {
  kind: Kind
  tag: string
  n: number
  eventId: string
  sectionId: string
  returned: number
  giving: { _id: string, status: string, expiresAt?: string }
  /** the instances' metrics once every one answered the section sold out from memory */
  remembered: Reading[]
}

function expect (res: ApiResponse, status: number, what: string): void {
  if (res.status !== status) throw new Error(`${what} answered ${res.status}, expected ${status}: ${res.text}`)
}

/** A cycle's first half: sell a fresh section out on A, then every instance answers it sold out from memory. */
async function prepare (t: Test, instances: Instance[], kind: Kind, eventId: string, sectionId: string, returned: number, n: number, sold: string[]): Promise<Prepared> {
  const a = instances[0]
  const tag = `${kind} #${n}`

  // sold out on A: a confirmed booking of the rest, then the booking that will give its seats back
  const fill = await book(a.client, eventId, sectionId, CAPACITY - returned, `fill-${n}`)
  expect(fill, 201, `${tag}: the filling booking`)
  sold.push(fill.body.data._id)
  const giving = await book(a.client, eventId, sectionId, returned, `giver-${n}`, kind !== 'cancel')
  expect(giving, 201, `${tag}: the booking to give back`)
  sold.push(giving.body.data._id)
  t.equal(giving.body.data.status, kind === 'cancel' ? 'confirmed' : 'held', `${tag}: ${giving.body.data.status} booking of ${returned} seat(s)`)

  // every instance sees the section sold out (a batch remembers it), then answers it from memory
  const before = await readMetrics(instances)
  const refused = await Promise.all(instances.map(async (instance, i) => {
    const statuses: number[] = []
    for (let k = 0; k < 2; k++) statuses.push((await book(instance.client, eventId, sectionId, 1, `early-${n}-${i}-${k}`)).status)
    return statuses
  }))
  // (a 201 in an expiry cycle: its 1-second hold ran out before every instance was asked)
  t.same(refused, instances.map(() => [409, 409]), `${tag}: sold out on every instance`)
  const remembered = await readMetrics(instances)
  t.same(instances.filter((_, i) => !(remembered[i].memory > before[i].memory)).map(x => x.name), [],
    `${tag}: sold_out_answers_total{source="memory"} rose on every instance`)
  return { kind, tag, n, eventId, sectionId, returned, giving: giving.body.data, remembered }
}

/** A cycle's second half: the seats come back (answered), then at once the race on B and C. */
async function returnAndRace (t: Test, instances: Instance[], p: Prepared, sold: string[]): Promise<Cycle> {
  const [a, b, c] = instances
  const { tag, eventId, sectionId, returned, remembered } = p
  let kind = p.kind
  // read now: a cycle run meanwhile (interleaved while a hold runs out) moved B's and C's invalidations, none of this section's
  const start = await readMetrics(instances)

  // the return, answered
  if (kind === 'cancel' || kind === 'release') {
    const cancelled = await a.client.request('POST', `/api/bookings/${p.giving._id}/cancel`)
    expect(cancelled, 200, `${tag}: the cancel on A`)
    t.equal(cancelled.body.data.status, 'cancelled', `${tag}: ${kind === 'cancel' ? 'confirmed booking cancelled' : 'hold released'} on A`)
  } else {
    const expiredBefore = sum(remembered, 'expiredSeats')
    if (kind === 'expiry: batch on A') {
      // a batch on A finds the hold due and expires it before it answers (the cancel then has nothing left to give back)
      await sleep(Math.max(0, Date.parse(p.giving.expiresAt!) - Date.now() + 5))
      // the sweeper may have been first: then this cycle is one of the sweeper's
      if (sum(await readMetrics(instances), 'expiredSeats') > expiredBefore) kind = 'expiry: sweeper'
      const late = await a.client.request('POST', `/api/bookings/${p.giving._id}/cancel`)
      expect(late, 200, `${tag}: the cancel after expiresAt on A`)
      t.equal(late.body.data.status, 'expired', `${tag}: a cancel on A after expiresAt finds the hold expired`)
    }
    // answered: the sweeper (or A's batch) counted the expired seats, which it does only once the return is counted on the lock servers
    const expired = await expiredSeatsReach(instances, expiredBefore + returned)
    t.equal(expired, expiredBefore + returned, `${tag}: hold_expired_seats_total summed over the instances rose by ${returned}`)
  }

  // the race, at once: qty 1 each, on B and C, one attempt each
  const race = await Promise.all(Array.from({ length: RACERS }, async (_, i) =>
    await book((i % 2 === 0 ? b : c).client, eventId, sectionId, 1, `racer-${p.n}-${i}`)))
  const after = await readMetrics(instances)
  for (const res of race) if (res.status === 201) sold.push(res.body.data._id)
  const created = race.filter(r => r.status === 201).length
  const soldOut = race.filter(r => r.status === 409).length
  const other = race.filter(r => r.status !== 201 && r.status !== 409).map(r => `${r.status} ${r.text.slice(0, 120)}`)
  const left = await remainingOf(a.client, eventId, sectionId)
  const invalidations = [1, 2].map(i => after[i].invalidations - start[i].invalidations)

  t.equal(created, returned, `${tag}: the ${returned} returned seat(s) sold on the first attempt`)
  t.equal(left, 0, `${tag}: nothing left unsold, so no 409 was given while the database had a seat`)
  t.same(other, [], `${tag}: only 201 and 409`)
  t.ok(race.filter(r => r.status === 409).every(r => r.body.error?.code === 'SOLD_OUT'), `${tag}: the 409s are SOLD_OUT`)
  if (kind === 'cancel' || kind === 'release') {
    // the return was on A: B's and C's memories both had to end
    t.same(invalidations.map(i => i >= 1), [true, true], `${tag}: sold_out_invalidations_total rose on B and C (${invalidations.join(', ')})`)
  }
  // an expiry needs no invalidation: a memory never outlives the first expiresAt of the section's holds
  return { kind, returned, created, soldOut, other, falseSoldOut: Math.min(left, soldOut), invalidations: invalidations[0] + invalidations[1] }
}

/** Three instances on a fresh database and `redisNodes`; every kind of return, CYCLES_PER_KIND times; the table of what was measured. */
async function returnsAcrossInstances (t: Test, redisNodes: string, beforeCycles?: (instances: Instance[]) => Promise<void>): Promise<Cycle[]> {
  const databaseUrl = await createTestDatabase(t)
  const env = { DATABASE_URL: databaseUrl, REDIS_NODES: redisNodes, SOLD_OUT_CACHE_MS: '60000', EXPIRY_SWEEP_MS: '200' }
  const servers = await Promise.all(['A', 'B', 'C'].map(async () => await startServer(env)))
  t.teardown(async () => { await Promise.all(servers.map(async s => await s.stop())) })
  const instances: Instance[] = servers.map((server, i) => ({ name: 'ABC'[i], server, client: urlClient(server.url, { headers: as.service }) }))
  const organizer = urlClient(servers[0].url, { headers: as.organizer })
  await beforeCycles?.(instances)

  // cancels and releases on holds of the default 10 minutes; expiries on an event whose holds last 1 second
  const lasting = await createEvent(organizer, Array(2 * CYCLES_PER_KIND).fill(CAPACITY), { name: 'Returns' })
  const brief = await createEvent(organizer, Array(CYCLES_PER_KIND).fill(CAPACITY), { name: 'Returns by expiry', holdSeconds: 1 })
  const sold = new Map([[lasting.eventId, [] as string[]], [brief.eventId, [] as string[]]])

  const cycles: Cycle[] = []
  const soldLasting = sold.get(lasting.eventId)!
  const soldBrief = sold.get(brief.eventId)!
  for (let n = 0; n < CYCLES_PER_KIND; n++) {
    const returned = 1 + n % 3
    // while the hold of the expiry cycle runs out, a cancel and a release cycle (other sections; the
    // metrics they check do not move for a section nobody asks for): only one cycle's return and race at a time
    const expiry = await prepare(t, instances, n % 2 === 0 ? 'expiry: sweeper' : 'expiry: batch on A', brief.eventId, brief.sectionIds[n], returned, n, soldBrief)
    for (const [i, kind] of (['cancel', 'release'] as const).entries()) {
      const m = 2 * n + i
      cycles.push(await returnAndRace(t, instances, await prepare(t, instances, kind, lasting.eventId, lasting.sectionIds[m], returned, m, soldLasting), soldLasting))
    }
    cycles.push(await returnAndRace(t, instances, expiry, soldBrief))
  }

  // the invariant, through the API and in the database: capacity == remaining + held + sold, every 201 stored
  for (const [eventId, ids] of sold) {
    const api = await checkViaApi(instances[1].client, eventId, { expected: { created: ids.length, ids } })
    t.same(api.problems, [], `invariant through the API (${ids.length} bookings)`)
    t.ok(api.sections.every(s => s.remaining === 0), 'every section sold out at the end')
    const sql = await withSql(databaseUrl, async sql => await checkViaSql(sql, eventId, { created: ids.length }))
    t.same(sql.problems, [], 'invariant in PostgreSQL')
  }
  return cycles
}

function table (title: string, cycles: Cycle[]): string {
  const rows = KINDS.map(kind => {
    const mine = cycles.filter(c => c.kind === kind)
    const add = (field: 'returned' | 'created' | 'soldOut' | 'falseSoldOut' | 'invalidations'): number => mine.reduce((n, c) => n + c[field], 0)
    return [kind, mine.length, add('returned'), add('created'), add('falseSoldOut'), add('soldOut'), mine.reduce((n, c) => n + c.other.length, 0), add('invalidations')].map(String)
  })
  return `${title}\n${textTable([['return', 'cycles', 'seats returned', '201 on first attempt', 'false 409', '409', 'other', 'invalidations on B+C'], ...rows])}`
}

/** The table's bottom line, asserted. */
function totals (t: Test, cycles: Cycle[]): void {
  const add = (field: 'returned' | 'created' | 'falseSoldOut'): number => cycles.reduce((n, c) => n + c[field], 0)
  t.equal(cycles.length, 3 * CYCLES_PER_KIND, `${cycles.length} cycles`)
  t.same({ falseSoldOut: add('falseSoldOut'), firstAttempt: add('created') }, { falseSoldOut: 0, firstAttempt: add('returned') },
    `no false 409; all ${add('returned')} returned seats sold on the first attempt`)
}

// the two set-ups share nothing (their own database, their own lock servers): they run side by side
t.jobs = 2

const skip = await missing('postgres', 'redis')
const redisSkip = skip ?? await redisServerAvailable()

t.test('seats returned on one instance are sold at once on the others: one Redis', { skip }, async t => {
  const cycles = await returnsAcrossInstances(t, REDIS_URL)
  t.comment(table(`3 instances, PostgreSQL, REDIS_NODES=${REDIS_URL}, SOLD_OUT_CACHE_MS=60000`, cycles))
  totals(t, cycles)
})

t.test('seats returned on one instance are sold at once on the others: three Redis nodes, one stopped', { skip: redisSkip }, async t => {
  const nodes = await Promise.all([0, 1, 2].map(async () => await throwawayRedis(t)))
  t.notOk(nodes.some(n => n.port === 6379), 'never the shared Redis')
  // the instances start with all three up and connected; the test then stops the last one
  const cycles = await returnsAcrossInstances(t, nodes.map(n => n.url).join(','), async instances => {
    const ready = await Promise.all(instances.map(async i => (await i.client.request('GET', '/health/ready')).status))
    t.same(ready, [200, 200, 200], 'every instance ready with the three nodes up')
    await nodes[2].stop()
    t.equal(nodes[2].pid(), undefined, `${nodes[2].url} stopped`)
    // DESIGN.md, Faults: not ready only when the quorum or the store is lost, not one of several nodes
    const oneDown = await instances[0].client.request('GET', '/health/ready')
    t.equal(oneDown.status, 200, 'ready with one of three Redis nodes down')
  })
  t.comment(table(`3 instances, PostgreSQL, 3 Redis nodes with 1 down (${nodes[2].url}), SOLD_OUT_CACHE_MS=60000`, cycles))
  totals(t, cycles)
})
