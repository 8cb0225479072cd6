/**
 * kill -9 of an instance that has been running the expiry sweeper: the
 * survivors take the sweeper over (after the lock's TTL at most), holds made
 * before and after the kill still expire with no traffic, their seats come
 * back, and the survivors keep sweeping.
 */
import t from 'tap'
import { createEvent, type EventView } from '../helpers/create-event.ts'
import { createTestDatabase, withSql } from '../helpers/databases.ts'
import { confirm, countWithStatus, hold } from '../helpers/hold-requests.ts'
import { urlClient, type ApiClient } from '../helpers/http-client.ts'
import { checkViaApi, checkViaSql } from '../helpers/invariant.ts'
import { pollUntil } from '../helpers/poll.ts'
import { scrapeUrl, total, totalOver } from '../helpers/prometheus-text.ts'
import { startServer } from '../helpers/server-process.ts'
import { missing, REDIS_URL } from '../helpers/services.ts'
import { textTable } from '../helpers/text-table.ts'
import { principals } from '../helpers/tokens.ts'

const CAPACITY = 30

t.test('kill -9 of the sweeping instance: the others expire the holds', { skip: await missing('postgres', 'redis') }, async t => {
  // short everything, so a take-over happens within seconds
  const env = { DATABASE_URL: await createTestDatabase(t), REDIS_NODES: REDIS_URL, EXPIRY_SWEEP_MS: '200', LOCK_TTL_MS: '1000' }
  const servers = await Promise.all([1, 2, 3].map(async () => await startServer(env)))
  t.teardown(async () => { await Promise.all(servers.map(async s => await s.stop())) })
  const as = await principals()
  const clients = servers.map(s => urlClient(s.url, { headers: as.service }))
  // 2 s holds: short, yet long enough for one confirm on a loaded machine
  const { eventId, sectionIds } = await createEvent(clients[0], [CAPACITY, CAPACITY], { name: 'Sweeper take-over', holdSeconds: 2, headers: as.organizer })

  const sweeps = async (url: string): Promise<number> => total(await scrapeUrl(url), 'expiry_sweeps_total')
  // the victim: the instance that has swept the most so far
  const counts = await pollUntil('an instance that has swept', async () => {
    const c = await Promise.all(servers.map(async s => await sweeps(s.url)))
    return Math.max(...c) > 0 ? c : undefined
  })
  const victim = counts.indexOf(Math.max(...counts))
  const survivors = servers.filter((_, i) => i !== victim)
  const survivorClients = clients.filter((_, i) => i !== victim)

  // holds on every instance, one of them confirmed, then the victim dies with them still held
  const before = await makeHolds(clients, eventId, sectionIds, 'before')
  await servers[victim].kill()
  const killedAt = Date.now()
  const sweptAtKill = await totalOver(survivors.map(s => s.url), 'expiry_sweeps_total')
  const after = await makeHolds(survivorClients, eventId, sectionIds, 'after')
  const confirmedSeats = before.confirmedSeats + after.confirmedSeats

  // no traffic from here on but reads: the survivors' sweeper alone must bring the seats back
  const event = await pollUntil('every unconfirmed held seat back', async () => {
    const res = await survivorClients[0].request<EventView>('GET', `/api/events/${eventId}`)
    const sections = res.body.data!.sections
    return sections.every(s => s.held === 0) ? res.body.data : undefined
  }, { everyMs: 50 })
  const backAfterMs = Date.now() - killedAt
  const remaining = event.sections.reduce((n, s) => n + s.remaining, 0)
  t.equal(remaining, 2 * CAPACITY - confirmedSeats, `remaining is capacity minus the ${confirmedSeats} confirmed seats`)
  t.equal(await countWithStatus(survivorClients[0], eventId, 'held'), 0, 'no booking is held')
  t.equal(await countWithStatus(survivorClients[1], eventId, 'expired'), before.holds + after.holds - 2, 'every unconfirmed hold expired')
  t.equal(await countWithStatus(survivorClients[1], eventId, 'confirmed'), 2, 'the confirmed holds stay confirmed')
  // the holds made before the kill expired after it: their expiry was the survivors' work
  if (killedAt < before.firstExpiry) {
    t.equal(await totalOver(survivors.map(s => s.url), 'holds_total', { outcome: 'expired' }), before.holds + after.holds - 2, 'the survivors expired every hold')
  } else {
    t.comment('the kill came after the first hold expired (a slow machine): not checking which instance expired what')
  }

  // and they keep sweeping
  const sweptLater = await pollUntil('survivors sweeping on', async () => {
    const n = await totalOver(survivors.map(s => s.url), 'expiry_sweeps_total')
    return n > sweptAtKill ? n : undefined
  })
  t.ok(sweptLater > sweptAtKill, `survivors' expiry_sweeps_total went on from ${sweptAtKill} to ${sweptLater}`)
  t.same((await checkViaApi(survivorClients[1], eventId)).problems, [], 'invariant via the API')
  t.same((await withSql(env.DATABASE_URL, async sql => await checkViaSql(sql, eventId))).problems, [], 'invariant via SQL')

  t.comment(textTable([
    ['victim sweeps', 'holds before kill', 'holds after kill', 'confirmed seats', 'remaining at end', 'all back after kill (ms)', 'survivor sweeps at kill -> later'],
    [counts[victim], before.holds, after.holds, confirmedSeats, `${remaining} of ${2 * CAPACITY}`, backAfterMs, `${sweptAtKill} -> ${sweptLater}`].map(String)
  ]))
})

/** One hold of qty 1..3 per section per client; the first one is confirmed. */
async function makeHolds (clients: ApiClient[], eventId: string, sectionIds: string[], tag: string) {
  const made = await Promise.all(clients.flatMap((client, c) => sectionIds.map(async (sectionId, s) => {
    const qty = 1 + (c + s) % 3
    const res = await hold(client, { eventId, sectionId }, qty, `${tag}-${c}-${s}`)
    if (res.status !== 201) throw new Error(`hold answered ${res.status}: ${res.text}`)
    return { id: res.body.data._id as string, qty, expiresAt: Date.parse(res.body.data.expiresAt) }
  })))
  const ok = await confirm(clients[0], made[0].id, `pay-${tag}`)
  if (ok.status !== 200) throw new Error(`confirm answered ${ok.status}: ${ok.text}`)
  return { holds: made.length, confirmedSeats: made[0].qty, firstExpiry: Math.min(...made.map(m => m.expiresAt)) }
}
