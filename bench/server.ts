/**
 * Benchmark servers: a real `server.ts` process per run (test/helpers'
 * startServer), always stopped: SIGTERM, then SIGKILL if it has not exited
 * in time.
 */
import { ConfigSchema } from '../plugins/config.ts'
import { urlClient, type ApiClient } from '../test/helpers/http-client.ts'
import { startServer, type ServerProcess } from '../test/helpers/server-process.ts'
import { pendingUndo } from './cleanup.ts'

const STOP_GRACE_MS = 20_000

/** Variables a benchmark server must not inherit from this shell: the bench sets them itself (identity: bench/auth.ts). */
export const SERVER_VARIABLES = [
  'STORE', 'DATABASE_URL', 'MONGODB_URI', 'REDIS_NODES', 'DATA_DIR', 'BATCH_MAX', 'LOG_LEVEL', 'LOG_PRETTY', 'PORT', 'HOST',
  'RATE_LIMIT_MAX', 'RATE_LIMIT_WINDOW_MS', 'HOLD_TTL_MS', 'EXPIRY_SWEEP_MS',
  ...Object.keys(ConfigSchema.properties).filter(name => name.startsWith('AUTH_')), 'METRICS_TOKEN'
]

/** Tuning variables a benchmark server does inherit from this shell (e.g. PG_POOL_SIZE=30 npm run bench); recorded with the results. */
export const INHERITED_VARIABLES = ['PG_POOL_SIZE', 'BATCH_CONCURRENCY', 'LOCK_TTL_MS', 'LOCK_WAIT_MS', 'SOLD_OUT_CACHE_MS']

export function inheritedEnv (): Record<string, string> {
  const out: Record<string, string> = {}
  for (const name of INHERITED_VARIABLES) {
    const value = process.env[name]
    if (value !== undefined) out[name] = value
  }
  return out
}

export interface Stopped {
  /** exit code after SIGTERM, or 'killed' when it had to be SIGKILLed */
  exit: number | null | 'killed'
  /** the last lines the server printed (warnings and errors at LOG_LEVEL=warn) */
  tail: string[]
}

export async function stopServer (server: ServerProcess): Promise<Stopped> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<'timeout'>(resolve => { timer = setTimeout(() => resolve('timeout'), STOP_GRACE_MS) })
  try {
    const code = await Promise.race([server.stop(), timeout])
    if (code !== 'timeout') return { exit: code, tail: server.output.slice(-20) }
    await server.kill()
    return { exit: 'killed', tail: server.output.slice(-20) }
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Runs fn against a freshly started server and stops the server whatever
 * happens; `onStopped` hears how it ended (a non-zero exit is worth a note).
 */
export async function withServer<T> (
  env: Record<string, string>,
  fn: (server: ServerProcess) => Promise<T>,
  onStopped: (stopped: Stopped) => void
): Promise<T> {
  const server = await startServer(env)
  const undo = async () => await stopServer(server)
  pendingUndo.add(undo)
  try {
    return await fn(server)
  } finally {
    pendingUndo.delete(undo)
    onStopped(await stopServer(server))
  }
}

/** The API of a bench server: reads retried on network errors, every request bounded; `headers` with every request (a token). */
export function benchClient (url: string, headers: Record<string, string>): ApiClient {
  return urlClient(url, { readAttempts: 3, timeoutMs: 30_000, headers })
}

export function bookingBody (eventId: string, sectionId: string, userId: string): string {
  return JSON.stringify({ eventId, sectionId, qty: 1, userId })
}
