import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Fastify, { type FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import app, { appOptions } from '../../app.ts'
import { createTestDatabase, REDIS_URL } from './services.ts'

interface TestContext { teardown: (fn: () => unknown) => void }

/** Builds the app (not the process) on the given environment; closed at teardown. */
export async function buildApp (t: TestContext, env: Record<string, string | undefined>): Promise<FastifyInstance> {
  const fastify = Fastify(appOptions({ logger: { level: process.env.TEST_LOG_LEVEL ?? 'silent' } }))
  await fastify.register(fp(app), { env: { LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent', ...env } })
  t.teardown(async () => await fastify.close())
  await fastify.ready()
  return fastify
}

/** A temporary directory for the embedded store, removed at teardown. */
export function tempDataDir (t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'booking-data-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** The store set-ups every store-backed suite runs on. */
export interface StoreSetup {
  name: string
  needs: Array<'postgres' | 'redis' | 'mongo'>
  /** environment for a fresh, empty store of this kind */
  env: (t: TestContext) => Promise<Record<string, string>>
}

export const STORE_SETUPS: StoreSetup[] = [
  {
    name: 'embedded',
    needs: [],
    env: async (t) => ({ DATA_DIR: tempDataDir(t) })
  },
  {
    name: 'postgres+redis',
    needs: ['postgres', 'redis'],
    env: async (t) => ({ STORE: 'postgres', DATABASE_URL: await createTestDatabase(t), REDIS_NODES: REDIS_URL })
  },
  {
    name: 'mongo+redis',
    needs: ['mongo', 'redis'],
    env: async () => ({
      STORE: 'mongo',
      MONGODB_URI: withDatabase(process.env.MONGODB_URI as string, `booking_test_${process.pid}_${Date.now()}`),
      REDIS_NODES: REDIS_URL
    })
  }
]

/** The same MongoDB URI pointing at another database name. */
export function withDatabase (uri: string, db: string): string {
  const url = new URL(uri)
  url.pathname = `/${db}`
  return url.toString()
}
