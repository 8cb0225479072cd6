import Fastify, { type FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import app, { appOptions } from '../../app.ts'
import type { TestContext } from './context.ts'
import { withTestAuth } from './tokens.ts'

/** Builds the app (not the process) on the given environment (HS256 tokens of the test secret unless it sets AUTH_*); closed at teardown. */
export async function buildApp (t: TestContext, env: Record<string, string | undefined>): Promise<FastifyInstance> {
  const fastify = Fastify(appOptions({ logger: { level: process.env.TEST_LOG_LEVEL ?? 'silent' } }))
  await fastify.register(fp(app), { env: { LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent', ...withTestAuth(env) } })
  t.teardown(async () => await fastify.close())
  await fastify.ready()
  return fastify
}
