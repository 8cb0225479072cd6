/**
 * Where the tests find Redis (databases.ts: PostgreSQL and MongoDB), and
 * whether the services a suite needs are there. Suites that need a service
 * run when it is reachable and report themselves skipped (with the reason)
 * when it is not; with REQUIRE_SERVICES=1 (set by .ci/run) an unreachable
 * service fails instead.
 */
import net from 'node:net'
import { MONGODB_URI, PG_ADMIN_URL } from './databases.ts'

// test/store/adapters.ts still takes it from here

export const REDIS_URL = process.env.REDIS_NODES ?? 'redis://127.0.0.1:6379'

function tcpReachable (url: string, defaultPort: number): Promise<boolean> {
  const { hostname, port } = new URL(url)
  return new Promise(resolve => {
    const socket = net.connect({ host: hostname, port: Number(port || defaultPort) })
    // a refused port answers at once; the timeout is for a black hole, and must outlast a test
    // process's event loop kept busy for a moment (a PGlite opening in the same process)
    socket.setTimeout(5000)
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => resolve(false))
    socket.once('timeout', () => { socket.destroy(); resolve(false) })
  })
}

export type Service = 'postgres' | 'redis' | 'mongo'

/** Why a suite needing these services cannot run here, or undefined when it can. */
export async function missing (...services: Service[]): Promise<string | undefined> {
  const reasons: string[] = []
  for (const service of services) {
    if (service === 'postgres' && !await tcpReachable(PG_ADMIN_URL, 5432)) reasons.push(`PostgreSQL not reachable at ${new URL(PG_ADMIN_URL).host}`)
    if (service === 'redis' && !await tcpReachable(REDIS_URL.split(',')[0], 6379)) reasons.push(`Redis not reachable at ${REDIS_URL}`)
    if (service === 'mongo' && MONGODB_URI === undefined) reasons.push('MONGODB_URI is not set (the MongoDB suites need a replica set, e.g. docker compose up -d)')
  }
  if (reasons.length === 0) return undefined
  const reason = reasons.join('; ')
  const required = process.env.REQUIRE_SERVICES === '1' && !services.includes('mongo')
  if (required) throw new Error(`REQUIRE_SERVICES=1 but ${reason}`)
  return reason
}
