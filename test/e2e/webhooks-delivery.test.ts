/**
 * Nothing sold goes unheard, across instances and faults: three instances on
 * PostgreSQL + Redis take 2,000 bookings and holds (confirmed, cancelled,
 * left to expire) spread over all of them, while a real receiver on
 * 127.0.0.1, verifying every signature with standardwebhooks, answers 500
 * for 5 s, is down for 5 s, and the instance delivering to it is killed with
 * -9. In the end the receiver has every change at least once, its first
 * acceptances are in feed order, its de-duplicated set is the change feed,
 * and the feed agrees with what the database holds.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { createEvent } from '../helpers/create-event.ts'
import { createTestDatabase, withSql } from '../helpers/databases.ts'
import { urlClient, type ApiClient } from '../helpers/http-client.ts'
import { checkViaSql } from '../helpers/invariant.ts'
import { mapLimit } from '../helpers/map-limit.ts'
import { pollUntil } from '../helpers/poll.ts'
import { totalOver } from '../helpers/prometheus-text.ts'
import { startServer } from '../helpers/server-process.ts'
import { missing, REDIS_URL } from '../helpers/services.ts'
import { textTable } from '../helpers/text-table.ts'
import { principals } from '../helpers/tokens.ts'
import { startReceiver } from '../helpers/webhook-receiver.ts'

const BOOKINGS = 2000
const SECTIONS = 4

/** Every change in the feed, following nextCursor. */
async function readFeed (client: ApiClient): Promise<any[]> {
  const items: any[] = []
  let after = ''
  for (;;) {
    const res = await client.request('GET', `/api/changes?limit=100${after}`)
    if (res.status !== 200) throw new Error(`feed answered ${res.status}`)
    items.push(...res.body.data.items)
    if (res.body.data.items.length === 0) return items
    after = `&after=${res.body.data.nextCursor}`
  }
}

t.test('3 instances, 2,000 bookings, a failing, a down receiver and kill -9 of its deliverer: every change delivered', { skip: await missing('postgres', 'redis') }, async t => {
  const databaseUrl = await createTestDatabase(t)
  const env = {
    DATABASE_URL: databaseUrl,
    REDIS_NODES: REDIS_URL,
    EXPIRY_SWEEP_MS: '200',
    WEBHOOK_ALLOW_HTTP: 'true',
    WEBHOOK_ALLOW_PRIVATE: 'true',
    WEBHOOK_POLL_MS: '50',
    WEBHOOK_RETRY_BASE_MS: '100',
    WEBHOOK_RETRY_MAX_MS: '800',
    WEBHOOK_TIMEOUT_MS: '1000',
    WEBHOOK_LEASE_MS: '2500'
  }
  const servers = await Promise.all([1, 2, 3].map(async () => await startServer(env)))
  t.teardown(async () => { await Promise.all(servers.map(async s => await s.stop())) })
  const as = await principals()
  const clients = servers.map(s => urlClient(s.url, { headers: as.service }))
  const admin = urlClient(servers[0].url, { headers: as.admin })

  const receiver = await startReceiver(t)
  const made = await admin.request('POST', '/api/webhooks', {
    url: receiver.url,
    types: ['booking.held', 'booking.confirmed', 'booking.cancelled', 'booking.expired', 'event.created', 'section.changed']
  })
  t.equal(made.status, 201)
  receiver.setSecret(made.body.data.secret)
  const webhookId: string = made.body.data._id
  // 1 s holds: those left alone expire during the run
  const { eventId, sectionIds } = await createEvent(clients[0], Array(SECTIONS).fill(BOOKINGS), { name: 'Heard', holdSeconds: 1, headers: as.organizer })

  // the load: spread over ~12 s and over the three instances
  const started = Date.now()
  const load = mapLimit(Array.from({ length: BOOKINGS }, (_, i) => i), 8, async (i) => {
    await sleep(Math.max(0, started + (i / BOOKINGS) * 12_000 - Date.now()))
    const client = clients[i % 3]
    const sectionId = sectionIds[i % SECTIONS]
    const hold = i % 2 === 0
    const res = await client.request('POST', '/api/bookings', { eventId, sectionId, qty: 1 + (i % 2), userId: `buyer-${i}`, hold })
    if (res.status !== 201) return `book ${res.status}`
    const id: string = res.body.data._id
    const other = clients[(i + 1) % 3]
    if (hold && i % 6 === 0) return (await other.request('POST', `/api/bookings/${id}/confirm`, { paymentRef: `pay-${i}` })).status === 200 ? 'confirmed' : 'confirm failed'
    if (hold && i % 6 === 2) return (await other.request('POST', `/api/bookings/${id}/cancel`)).status === 200 ? 'released' : 'release failed'
    if (!hold && i % 10 === 1) return (await other.request('POST', `/api/bookings/${id}/cancel`)).status === 200 ? 'cancelled' : 'cancel failed'
    return hold ? 'held' : 'booked'
  })

  // the faults, while the load runs: 500s for 5 s, then the receiver down for 5 s
  await sleep(1000)
  receiver.mode = 'fail'
  await sleep(5000)
  receiver.mode = 'ok'
  await sleep(500)
  await receiver.down()
  await sleep(5000)
  await receiver.up()
  const outcomes = await load
  const counts = new Map<string, number>()
  for (const o of outcomes) counts.set(o, (counts.get(o) ?? 0) + 1)
  t.same([...counts.keys()].filter(k => k.includes(' ')), [], 'every booking, confirm and cancel answered as asked')

  // kill -9 the instance holding the endpoint's lease, while it delivers what piled up
  const holder = await pollUntil('an instance delivering', async () => await withSql(databaseUrl, async sql => {
    const rows = await sql.query<{ lease_owner: string | null }>('SELECT lease_owner FROM webhooks WHERE id = $1 AND lease_until > clock_timestamp()', [webhookId])
    return rows[0]?.lease_owner ?? undefined
  }))
  const victim = servers.findIndex(s => holder.split(':')[1] === String(s.child.pid))
  t.ok(victim >= 0, `the lease holder ${holder} is one of the instances`)
  const acceptedAtKill = receiver.accepted().length
  await servers[victim].kill()
  const survivors = servers.filter((_, i) => i !== victim)
  const reader = urlClient(survivors[0].url, { headers: as.admin })

  // every hold settled, then every change of the feed accepted by the receiver
  await pollUntil('no hold left', async () => {
    const res = await reader.request('GET', `/api/bookings?eventId=${eventId}&status=held&limit=1`)
    return res.body.data.total === 0 ? true : undefined
  }, { timeoutMs: 60_000 })
  // the feed as the receiver should have it: read again until the receiver has accepted as many
  const finalFeed = await pollUntil('every change of the feed accepted', async () => {
    const feed = (await readFeed(reader)).filter(c => made.body.data.types.includes(c.type))
    return receiver.accepted().length >= feed.length ? feed : undefined
  }, { everyMs: 250, timeoutMs: 120_000 })
  const accepted = receiver.accepted()

  t.ok(receiver.deliveries.every(d => d.verified), `all ${receiver.deliveries.length} deliveries carry a valid signature`)
  t.same(accepted.map(d => d.id), finalFeed.map(c => c.id), 'the receiver\'s first acceptances are the feed, in its order')
  t.same(accepted.map(d => d.change), finalFeed, 'with the feed\'s bodies')
  t.ok(receiver.deliveries.some(d => d.status === 500), 'the 500s were seen')
  const redelivered = receiver.deliveries.filter(d => d.status < 300).length - accepted.length

  // the feed is what the database holds: each booking's last change is its status now, each booking has its changes
  const db = await withSql(databaseUrl, async sql => {
    const rows = await sql.query<{ id: string, status: string }>('SELECT id, status FROM bookings WHERE event_id = $1', [eventId])
    return { bookings: rows, invariant: await checkViaSql(sql, eventId) }
  })
  const last = new Map<string, string>()
  for (const c of finalFeed) if (c.type.startsWith('booking.')) last.set(c.data._id, c.data.status)
  t.equal(last.size, db.bookings.length, 'every booking in the database has changes in the feed')
  t.same(db.bookings.filter(b => last.get(b.id) !== b.status), [], 'each booking\'s last change is its status in the database')
  t.same(db.invariant.problems, [], 'invariant via SQL')
  const types = new Map<string, number>()
  for (const c of finalFeed) types.set(c.type, (types.get(c.type) ?? 0) + 1)
  t.equal(types.get('booking.expired') ?? 0, db.bookings.filter(b => b.status === 'expired').length, 'an expiry recorded for each expired hold')
  t.ok((types.get('booking.expired') ?? 0) > 0 && (types.get('booking.cancelled') ?? 0) > 0, 'expiries and cancellations among them')
  const disabled = (await reader.request('GET', `/api/webhooks/${webhookId}`)).body.data
  t.match(disabled, { disabled: false, failures: 0 })
  const delivered = await totalOver(survivors.map(s => s.url), 'webhook_deliveries_total', { outcome: 'delivered' })
  if (acceptedAtKill < finalFeed.length) t.ok(delivered > 0, 'the survivors went on from where the killed instance was')
  else t.comment('the killed instance had delivered everything before it died: no take-over to see this run')

  t.comment(textTable([
    ['changes', 'deliveries (all)', '500s', 'redelivered', 'accepted at kill', 'survivors delivered', 'by type'],
    [finalFeed.length, receiver.deliveries.length, receiver.deliveries.filter(d => d.status === 500).length, redelivered, acceptedAtKill, delivered,
      [...types].map(([k, v]) => `${k} ${v}`).join(', ')].map(String)
  ]))
})
