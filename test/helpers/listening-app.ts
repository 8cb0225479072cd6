/** The app listening on 127.0.0.1 (a port the OS picks), for tests that need real HTTP without a separate process. */
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { buildApp } from './build-app.ts'
import type { TestContext } from './context.ts'

export async function listeningApp (t: TestContext, env: Record<string, string | undefined>): Promise<{ app: FastifyInstance, url: string }> {
  const app = await buildApp(t, env)
  await app.listen({ host: '127.0.0.1', port: 0 })
  return { app, url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}` }
}
