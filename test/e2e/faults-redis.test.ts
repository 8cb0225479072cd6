/**
 * Redis faults under a real server process and real load, on throwaway
 * redis-servers (never the machine's shared Redis): one node frozen
 * (SIGSTOP), one of three frozen, and a three-node quorum losing one node and
 * then two. DESIGN.md, Faults: no crash, no 500, every request answered within
 * its deadline (all of them while the fault still lasts), with the quorum
 * known down at once rather than after LOCK_WAIT_MS; readiness 503 only when
 * the quorum is lost, nodes by index, no address in the body; recovery by
 * itself, and the invariant holds.
 */
import t, { type Test } from 'tap'
import { createEvent } from '../helpers/create-event.ts'
import { pgliteDataDir } from '../helpers/databases.ts'
import { assertSurvived, figuresTable, underFault, type Answer, type FaultFigures, type FaultOptions } from '../helpers/fault-load.ts'
import { urlClient, type ApiClient } from '../helpers/http-client.ts'
import { checkViaApi } from '../helpers/invariant.ts'
import { redisServerAvailable, throwawayRedis, type RedisServer } from '../helpers/redis-server.ts'
import { startServer, type ServerProcess } from '../helpers/server-process.ts'
import { principals } from '../helpers/tokens.ts'

const skip = await redisServerAvailable()
if (skip !== undefined) console.log(`# SKIPPED Redis faults: ${skip}`)

const as = await principals()
const figures: FaultFigures[] = []
t.teardown(() => { if (figures.length > 0) console.log(`# Redis faults\n${figuresTable(figures).replace(/^/gm, '# ')}`) })

interface Setup { nodes: RedisServer[], server: ServerProcess, client: ApiClient, eventId: string, sectionId: string, /** every answer so far, for the invariant */ answers: Answer[] }

async function setup (t: Test, nodeCount: number, lockWaitMs: number): Promise<Setup> {
  const nodes = await Promise.all(Array.from({ length: nodeCount }, async () => await throwawayRedis(t)))
  t.notOk(nodes.some(n => n.port === 6379), 'never the shared Redis')
  const server = await startServer({
    DATA_DIR: await pgliteDataDir(t), REDIS_NODES: nodes.map(n => n.url).join(','), LOCK_WAIT_MS: String(lockWaitMs)
  })
  t.teardown(async () => { await server.kill() })
  const client = urlClient(server.url, { headers: as.service, timeoutMs: 60_000 })
  const { eventId, sectionId } = await createEvent(urlClient(server.url, { headers: as.organizer }), [100_000], { name: 'Redis faults' })
  return { nodes, server, client, eventId, sectionId, answers: [] }
}

async function afterFault (t: Test, { server, client, eventId }: Setup, answers: Answer[], recoverMs: number | null): Promise<void> {
  const created = assertSurvived(t, server, answers, recoverMs, 'once the fault is over')
  // a lock refused means nothing was done; the count stays a range only for requests with no answer
  const unanswered = answers.filter(a => a.status === 0).length
  const check = await checkViaApi(client, eventId, { expected: { created, unanswered } })
  t.same(check.problems, [], `invariant via the API (${check.storedBookings} stored, ${created} answered 201)`)
}

/** Runs the fault; `during` is the status every request sent while it lasts must get. */
async function faultRun (t: Test, s: Setup, options: Omit<FaultOptions, 'client' | 'target'>, during: 201 | 503): Promise<void> {
  const run = await underFault({ ...options, client: s.client, target: { eventId: s.eventId, sectionId: s.sectionId } })
  figures.push(run.figures)
  t.comment(figuresTable([run.figures]))
  t.equal(run.unansweredBeforeClear, 0, 'every request sent during the fault was answered while it lasted')
  t.same(run.burst.filter(a => a.status !== during), [], `each of them with ${during}`)
  s.answers.push(...run.load, ...run.burst, ...run.recovery)
  await afterFault(t, s, s.answers, run.figures.recoverMs)
}

const ready = async (s: Setup) => await urlClient(s.server.url).request('GET', '/health/ready')

t.test('the one Redis node frozen (SIGSTOP)', { skip }, async t => {
  const s = await setup(t, 1, 2000)
  await faultRun(t, s, {
    fault: '1 Redis node, SIGSTOP',
    apply: async () => { await s.nodes[0].freeze() },
    clear: async () => { s.nodes[0].thaw() }
  }, 503)
})

t.test('one of three Redis nodes frozen (SIGSTOP): bookings go on', { skip }, async t => {
  const s = await setup(t, 3, 2000)
  await faultRun(t, s, {
    fault: '1 of 3 Redis nodes, SIGSTOP',
    apply: async () => { await s.nodes[1].freeze() },
    clear: async () => { s.nodes[1].thaw() }
  }, 201)
})

t.test('a three-node quorum losing one node, then two, then both back', { skip }, async t => {
  // LOCK_WAIT_MS far longer than the fault lasts: refusals answered while the nodes are down came at once, not at the deadline
  const s = await setup(t, 3, 30_000)
  await faultRun(t, s, {
    fault: '1 of 3 Redis nodes stopped',
    apply: async () => { await s.nodes[2].stop() },
    whileFaulty: async () => {
      const answer = await ready(s)
      t.equal(answer.status, 200, 'ready with one of three nodes down')
      t.same(answer.body.data?.checks?.redis, { up: 2, of: 3, quorum: 2, down: [2] }, 'the node down named by its index')
    },
    clear: async () => { await s.nodes[2].start() }
  }, 201)

  await faultRun(t, s, {
    fault: '2 of 3 Redis nodes stopped',
    apply: async () => { await Promise.all([s.nodes[0].stop(), s.nodes[2].stop()]) },
    capMs: 10_000,
    whileFaulty: async () => {
      const answer = await ready(s)
      t.equal(answer.status, 503, 'not ready without a quorum')
      t.equal(answer.body.error?.dependency, 'redis', 'the lock quorum named')
      t.same(answer.body.error?.checks?.redis, { up: 1, of: 3, quorum: 2, down: [0, 2] }, 'nodes down by index')
      t.equal(answer.body.error?.checks?.store?.ok, true, 'the store is fine')
      for (const node of s.nodes) t.notMatch(answer.text, String(node.port), 'no address in the public body')
      const busy = await s.client.request('POST', '/bookings', { eventId: s.eventId, sectionId: s.sectionId, qty: 1, userId: 'no-quorum' })
      t.equal(busy.body.error?.code, 'BUSY', 'a booking is refused as BUSY')
    },
    clear: async () => { await Promise.all([s.nodes[0].start(), s.nodes[2].start()]) }
  }, 503)
  t.equal((await ready(s)).status, 200, 'ready again with the nodes back')
})
