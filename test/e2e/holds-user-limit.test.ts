/**
 * maxPerUser across sections and instances: one user's parallel holds and
 * bookings in three sections through three server processes on one
 * PostgreSQL never take more than the event's cap; each refusal is 409
 * LIMIT_EXCEEDED telling how many seats the user may still take.
 */
import t from 'tap'
import { createEvent } from '../helpers/create-event.ts'
import { createTestDatabase, withSql } from '../helpers/databases.ts'
import { confirm } from '../helpers/hold-requests.ts'
import { urlClient } from '../helpers/http-client.ts'
import { checkViaApi, checkViaSql } from '../helpers/invariant.ts'
import { startServer } from '../helpers/server-process.ts'
import { missing, REDIS_URL } from '../helpers/services.ts'
import { textTable } from '../helpers/text-table.ts'
import { principals } from '../helpers/tokens.ts'

const MAX_PER_USER = 4
const REQUESTS = 60
const USER = 'greedy-buyer'

t.test(`one user, 3 sections, 3 instances, ${REQUESTS} parallel requests: never more than maxPerUser ${MAX_PER_USER}`, { skip: await missing('postgres', 'redis') }, async t => {
  const env = { DATABASE_URL: await createTestDatabase(t), REDIS_NODES: REDIS_URL }
  const servers = await Promise.all([1, 2, 3].map(async () => await startServer(env)))
  t.teardown(async () => { await Promise.all(servers.map(async s => await s.stop())) })
  const as = await principals()
  const clients = servers.map(s => urlClient(s.url, { headers: as.service }))
  // holds long enough that none expires during the test: the cap counts held seats
  const { eventId, sectionIds } = await createEvent(clients[0], [50, 50, 50], { name: 'Capped', maxPerUser: MAX_PER_USER, holdSeconds: 600, headers: as.organizer })

  // every section through every instance; most are holds, some plain bookings (confirmed at once)
  const requests = Array.from({ length: REQUESTS }, (_, i) => ({
    client: clients[Math.floor(i / 3) % 3],
    body: { eventId, sectionId: sectionIds[i % 3], qty: 1 + Math.floor(Math.random() * 2), userId: USER, ...(i % 5 === 0 ? {} : { hold: true }) }
  }))
  const answers = await Promise.all(requests.map(async r => ({ qty: r.body.qty, res: await r.client.request('POST', '/bookings', r.body) })))
  const created = answers.filter(a => a.res.status === 201)
  const refused = answers.filter(a => a.res.status === 409)
  const takenSeats = created.reduce((n, a) => n + a.qty, 0)

  t.same(answers.filter(a => a.res.status !== 201 && a.res.status !== 409).map(a => `${a.res.status} ${a.res.text}`), [], 'only 201 and 409')
  t.ok(takenSeats <= MAX_PER_USER, `the 201s took ${takenSeats} seats, at most ${MAX_PER_USER}`)
  t.ok(refused.length > 0, 'some requests were refused')
  for (const a of refused) {
    const e = a.res.body.error!
    if (e.code !== 'LIMIT_EXCEEDED' || !Number.isInteger(e.allowed) || e.allowed < 0 || e.allowed >= a.qty || e.requested !== a.qty) {
      t.fail(`a refusal must be LIMIT_EXCEEDED with 0 <= allowed < qty ${a.qty}: ${JSON.stringify(e)}`)
    }
  }

  // confirming the holds, in parallel on any instance, takes no further seat
  const holds = created.filter(a => a.res.body.data.status === 'held')
  const confirms = await Promise.all(holds.map(async (a, i) => await confirm(clients[i % 3], a.res.body.data._id, `pay-${i}`)))
  t.same(confirms.map(c => c.status), holds.map(() => 200), 'every hold confirmed')

  // the cap is told exactly once nothing races: one seat more than allowed is refused with allowed, the rest fits
  const allowed = MAX_PER_USER - takenSeats
  const over = await clients[1].request('POST', '/bookings', { eventId, sectionId: sectionIds[2], qty: allowed + 1, userId: USER, hold: true })
  t.match([over.status, over.body.error], [409, { code: 'LIMIT_EXCEEDED', allowed, requested: allowed + 1 }], `asking ${allowed + 1} more: allowed ${allowed}`)
  if (allowed > 0) {
    const rest = await clients[2].request('POST', '/bookings', { eventId, sectionId: sectionIds[0], qty: allowed, userId: USER })
    t.equal(rest.status, 201, `the ${allowed} seat(s) still allowed can be taken`)
  }
  const other = await clients[0].request('POST', '/bookings', { eventId, sectionId: sectionIds[1], qty: MAX_PER_USER, userId: 'someone-else', hold: true })
  t.equal(other.status, 201, 'another user has a cap of its own')

  // the user's seats, as the API and the database count them
  const listed = await clients[0].request('GET', `/bookings?eventId=${eventId}&userId=${USER}&limit=100`)
  const mine = (listed.body.data.items as Array<{ qty: number, status: string }>).filter(b => b.status === 'held' || b.status === 'confirmed')
  const apiSeats = mine.reduce((n, b) => n + b.qty, 0)
  const [{ seats: sqlSeats }] = await withSql(env.DATABASE_URL, async sql => await sql.query<{ seats: number }>(
    "SELECT coalesce(sum(qty), 0)::int AS seats FROM bookings WHERE event_id = $1 AND user_id = $2 AND status IN ('held', 'confirmed')", [eventId, USER]))
  t.equal(apiSeats, MAX_PER_USER, 'the API lists exactly maxPerUser seats held or confirmed for the user')
  t.equal(sqlSeats, MAX_PER_USER, 'the database holds exactly maxPerUser seats for the user')
  t.same((await checkViaApi(clients[1], eventId)).problems, [], 'invariant via the API')
  t.same((await withSql(env.DATABASE_URL, async sql => await checkViaSql(sql, eventId))).problems, [], 'invariant via SQL')

  t.comment(textTable([
    ['requests', '201', 'seats taken', '409 LIMIT_EXCEEDED', 'allowed values', 'user seats (API / SQL, after topping up)'],
    [REQUESTS, created.length, takenSeats, refused.length, [...new Set(refused.map(a => a.res.body.error!.allowed))].sort().join(','), `${apiSeats} / ${sqlSeats}`].map(String)
  ]))
})
