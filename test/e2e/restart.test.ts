/**
 * Real processes, real signals: a graceful stop (SIGTERM) finishes what it
 * accepted and exits 0; a crash (SIGKILL) loses no confirmed booking. Both
 * stores, data checked after a restart on the same data.
 */
import t, { type Test } from 'tap'
import { tempDataDir } from '../helpers/build-app.ts'
import { startServer, type ServerProcess } from '../helpers/server-process.ts'
import { createTestDatabase, missing, REDIS_URL } from '../helpers/services.ts'

async function json (url: string, init?: RequestInit): Promise<{ status: number, body: any }> {
  const res = await fetch(url, init)
  return { status: res.status, body: await res.json() }
}

async function createSection (server: ServerProcess, capacity: number) {
  const { body } = await json(`${server.url}/api/events`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'Restart', sections: [{ name: 'A', price: 5, capacity }] })
  })
  return { eventId: body.data._id as string, sectionId: body.data.sections[0]._id as string }
}

/** Fires `n` bookings at once; a request the stopping server refused to take answers `null`. */
function burst (server: ServerProcess, ids: object, n: number) {
  return Array.from({ length: n }, async (_, i) => await json(`${server.url}/bookings`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...ids, qty: 1, userId: `r${i}` })
  }).catch(() => null))
}

async function checkAfterRestart (t: Test, env: Record<string, string>, ids: { eventId: string }, confirmed: string[]) {
  const again = await startServer(env)
  t.teardown(async () => await again.stop())
  const event = (await json(`${again.url}/api/events/${ids.eventId}`)).body.data
  const stored = (await json(`${again.url}/bookings?eventId=${ids.eventId}&limit=100`)).body.data
  const ids201 = new Set(stored.items.map((b: { _id: string }) => b._id))
  t.ok(confirmed.every(id => ids201.has(id)), `all ${confirmed.length} answered bookings are there after the restart`)
  t.equal(stored.total, confirmed.length, 'and no booking nobody was told about')
  t.equal(event.sections[0].remaining + stored.total, event.sections[0].capacity, 'capacity == remaining + sold')
}

const setups: Array<{ name: string, needs: Array<'postgres' | 'redis'>, env: (t: Test) => Promise<Record<string, string>> }> = [
  { name: 'embedded', needs: [], env: async t => ({ DATA_DIR: tempDataDir(t) }) },
  { name: 'postgres+redis', needs: ['postgres', 'redis'], env: async t => ({ DATABASE_URL: await createTestDatabase(t), REDIS_NODES: REDIS_URL }) }
]

for (const setup of setups) {
  const skip = await missing(...setup.needs)

  t.test(`SIGTERM while booking: answered requests complete, exit 0 (${setup.name})`, { skip }, async t => {
    const env = await setup.env(t)
    const server = await startServer(env)
    const ids = await createSection(server, 60)
    const inFlight = burst(server, ids, 80)
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
    const ids = await createSection(server, 30)
    const answers = await Promise.all(burst(server, ids, 40))
    await server.kill()
    t.same(answers.map(a => a?.status).filter(s => s !== 201 && s !== 409), [], 'only 201 and 409 before the crash')
    const confirmed = answers.filter(a => a?.status === 201).map(a => a!.body.data._id as string)
    t.equal(confirmed.length, 30)
    await checkAfterRestart(t, env, ids, confirmed)
  })
}
