import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { ANSWERS, HealthSchema, PUBLIC, okAnswer } from '../lib/responses.ts'
import { ref } from '../lib/schemas.ts'

const CHECK_TIMEOUT_MS = 2000

interface Check { ok: boolean, latencyMs?: number, error?: string }

async function check (fn: () => Promise<unknown>): Promise<Check> {
  const start = performance.now()
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([fn(), new Promise((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer in ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS)
    })])
    return { ok: true, latencyMs: Math.round((performance.now() - start) * 100) / 100 }
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : String(err) }
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
      summary: 'Readiness: the store and a quorum of the Redis nodes answer',
      description: 'For load balancers. One of several Redis nodes down leaves the lock its quorum: still ready. 503 names the failing dependency.',
      security: PUBLIC,
      response: { 200: okAnswer(ref(HealthSchema), 'Ready: every check is listed'), 500: ANSWERS.internal, 503: ANSWERS.notReady }
    }
  }, async (_request, reply) => {
    const checks: Record<string, Check> = {}
    const { store, locker } = fastify
    const [storeCheck, ...nodeChecks] = await Promise.all([
      check(async () => await store.ping()),
      ...locker.nodes.map(async node => await check(node.ping))
    ])
    checks[`store:${store.kind}`] = storeCheck
    locker.nodes.forEach((node, i) => { checks[`redis:${node.name}`] = nodeChecks[i] })
    // one of several Redis nodes down leaves the lock its quorum: no reason to take the instance out
    const quorum = Math.floor(locker.nodes.length / 2) + 1
    const nodesDown = locker.nodes.flatMap((node, i) => nodeChecks[i].ok ? [] : [`redis:${node.name}`])
    const failing = [
      ...(storeCheck.ok ? [] : [`store:${store.kind}`]),
      ...(locker.nodes.length - nodesDown.length < quorum ? nodesDown : [])
    ]
    if (failing.length > 0) {
      reply.header('retry-after', '5')
      return reply.code(503).send({
        success: false as const,
        error: { code: 'DEPENDENCY_DOWN', message: `Not ready: ${failing.join(', ')} down`, dependency: failing.join(','), checks }
      })
    }
    return { success: true as const, data: { status: 'ok' as const, uptime: process.uptime(), store: fastify.store.kind, checks } }
  })
}

export default routes
