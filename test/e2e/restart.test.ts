/**
 * Real processes, real signals: a graceful stop (SIGTERM) finishes what it
 * accepted and exits 0; a crash (SIGKILL) loses no confirmed booking. Both
 * stores, data checked after a restart on the same data.
 */
import t, { type Test } from 'tap'
import { createEvent } from '../helpers/create-event.ts'
import { urlClient, type ApiClient } from '../helpers/http-client.ts'
import { checkViaApi } from '../helpers/invariant.ts'
import { startServer } from '../helpers/server-process.ts'
import { missing } from '../helpers/services.ts'
import { STORE_SETUPS } from '../helpers/store-setups.ts'
import { principals } from '../helpers/tokens.ts'

// an organizer creates the events; the clients are a service booking on behalf of users, which sees every booking
const as = await principals()
const serviceClient = (url: string): ApiClient => urlClient(url, { headers: as.service })

async function createSection (client: ApiClient, capacity: number) {
  const { eventId, sectionId } = await createEvent(client, [capacity], { name: 'Restart', price: 5, sectionNames: ['A'], headers: as.organizer })
  return { eventId, sectionId }
}

/** Fires `n` bookings at once; a request the stopping server refused to take answers `null`. */
function burst (client: ApiClient, ids: object, n: number) {
  return Array.from({ length: n }, async (_, i) => await client.request('POST', '/bookings', { ...ids, qty: 1, userId: `r${i}` }).catch(() => null))
}

async function checkAfterRestart (t: Test, env: Record<string, string>, ids: { eventId: string }, confirmed: string[]) {
  const again = await startServer(env)
  t.teardown(async () => await again.stop())
  const { problems } = await checkViaApi(serviceClient(again.url), ids.eventId, { expected: { created: confirmed.length, ids: confirmed } })
  t.same(problems, [], `after the restart: all ${confirmed.length} answered bookings are there, no booking nobody was told about, capacity == remaining + sold`)
}

// the embedded store and PostgreSQL + Redis (MongoDB restarts are not covered here)
const setups = STORE_SETUPS.filter(s => s.name === 'embedded' || s.name === 'postgres+redis')

for (const setup of setups) {
  const skip = await missing(...setup.needs)

  t.test(`SIGTERM while booking: answered requests complete, exit 0 (${setup.name})`, { skip }, async t => {
    const env = await setup.env(t)
    const server = await startServer(env)
    const client = serviceClient(server.url)
    const ids = await createSection(client, 60)
    const inFlight = burst(client, ids, 80)
    await Promise.race(inFlight) // the server is busy booking now
    const code = await server.stop()
    const answers = await Promise.all(inFlight)
    t.equal(code, 0, 'exit code 0', { output: code === 0 ? undefined : server.output.slice(-15) })
    const answered = answers.filter(a => a !== null)
    t.same(answered.filter(a => a.status !== 201 && a.status !== 409 && a.status !== 503).map(a => a.status), [],
      'every request the server took was answered 201 or 409 (or 503 while closing), never a 500')
    const confirmed = answered.filter(a => a.status === 201).map(a => a.body.data._id as string)
    await checkAfterRestart(t, env, ids, confirmed)
  })

  t.test(`SIGKILL after bookings: nothing confirmed is lost (${setup.name})`, { skip }, async t => {
    const env = await setup.env(t)
    const server = await startServer(env)
    const client = serviceClient(server.url)
    const ids = await createSection(client, 30)
    const answers = await Promise.all(burst(client, ids, 40))
    await server.kill()
    t.same(answers.map(a => a?.status).filter(s => s !== 201 && s !== 409), [], 'only 201 and 409 before the crash')
    const confirmed = answers.filter(a => a?.status === 201).map(a => a!.body.data._id as string)
    t.equal(confirmed.length, 30)
    await checkAfterRestart(t, env, ids, confirmed)
  })
}
