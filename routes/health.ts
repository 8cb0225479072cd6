import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Static } from '@sinclair/typebox'
import { ANSWERS, HealthSchema, PUBLIC, okAnswer, type ReadinessChecksSchema } from '../lib/api/responses.ts'
import { ref } from '../lib/api/schemas.ts'

const CHECK_TIMEOUT_MS = 2000

type Check = { ok: true, latencyMs: number } | { ok: false, error: unknown }

/** Runs one dependency's check, answered within CHECK_TIMEOUT_MS. */
async function check (fn: () => Promise<unknown>): Promise<Check> {
  const start = performance.now()
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([fn(), new Promise((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer in ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS)
    })])
    return { ok: true, latencyMs: Math.round((performance.now() - start) * 100) / 100 }
  } catch (err) {
    return { ok: false, error: err }
  } finally {
    clearTimeout(timer)
  }
}

const routes: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/health', {
    schema: {
      operationId: 'health',
      tags: ['ops'],
      summary: 'Liveness: the process answers (no dependency is contacted)',
      security: PUBLIC,
      response: { 200: okAnswer(ref(HealthSchema), 'The process is alive'), 500: ANSWERS.internal }
    }
  }, async () => ({
    success: true as const,
    data: { status: 'ok' as const, uptime: process.uptime(), store: fastify.store.kind }
  }))

  fastify.get('/health/ready', {
    schema: {
      operationId: 'ready',
      tags: ['ops'],
      summary: 'Readiness: the store and a quorum of the Redis nodes answer; 503 only when the store or the lock quorum is lost',
      description: 'For load balancers. One of several Redis nodes down leaves the lock its quorum: still ready. 503 names what is lost; Redis nodes by their index in REDIS_NODES, addresses and driver errors only in the log.',
      security: PUBLIC,
      response: { 200: okAnswer(ref(HealthSchema), 'Ready: every check is listed'), 500: ANSWERS.internal, 503: ANSWERS.notReady }
    }
  }, async (request, reply) => {
    const { store, locker } = fastify
    const [storeCheck, ...nodeChecks] = await Promise.all([
      // with a deadline: a store that stalls gives back the connection the ping took
      check(async () => await store.ping(Date.now() + CHECK_TIMEOUT_MS)),
      ...locker.nodes.map(async node => await check(node.ping))
    ])
    const checks: Static<typeof ReadinessChecksSchema> = { store: storeCheck.ok ? storeCheck : { ok: false } }
    // one of several Redis nodes down leaves the lock its quorum: no reason to take the instance out
    const quorum = Math.floor(locker.nodes.length / 2) + 1
    const down = nodeChecks.flatMap((c, node) => c.ok ? [] : [node])
    if (locker.nodes.length > 0) checks.redis = { up: locker.nodes.length - down.length, of: locker.nodes.length, quorum, down }
    // the lock's own view counts too: until its probe finds the quorum back, bookings are refused
    const quorumLost = (locker.nodes.length > 0 && locker.nodes.length - down.length < quorum) || !locker.available()
    const lost = [...(storeCheck.ok ? [] : ['store']), ...(quorumLost ? ['redis'] : [])]

    // addresses and driver errors are for operators: the log, never the public body
    const failures = [
      ...(storeCheck.ok ? [] : [{ dependency: `store:${store.kind}`, err: storeCheck.error }]),
      ...down.map(node => ({ dependency: `redis node ${node} (${locker.nodes[node].name})`, err: (nodeChecks[node] as { error: unknown }).error }))
    ]
    for (const { dependency, err } of failures) request.log.warn({ dependency, err }, 'readiness: dependency not answering')

    if (lost.length > 0) {
      reply.header('retry-after', '5')
      const what = lost.map(d => d === 'store' ? `the store (${store.kind})` : `the lock quorum (${quorum} of ${locker.nodes.length} Redis nodes needed, ${locker.nodes.length - down.length} answer)`)
      return reply.code(503).send({
        success: false as const,
        error: { code: 'DEPENDENCY_DOWN', message: `Not ready: ${what.join(' and ')} lost`, dependency: lost.join(','), checks }
      })
    }
    return { success: true as const, data: { status: 'ok' as const, uptime: process.uptime(), store: store.kind, checks } }
  })
}

export default routes
