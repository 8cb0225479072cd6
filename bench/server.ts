/**
 * Benchmark servers: a real `server.ts` process per run (test/helpers'
 * startServer), always stopped: SIGTERM, then SIGKILL if it has not exited
 * in time. Also the few plain API calls the scenarios make around a run.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { startServer, type ServerProcess } from '../test/helpers/server-process.ts'
import { pendingUndo } from './cleanup.ts'

const STOP_GRACE_MS = 20_000

/** Variables a benchmark server must not inherit from this shell: the bench sets them itself. */
export const SERVER_VARIABLES = [
  'STORE', 'DATABASE_URL', 'MONGODB_URI', 'REDIS_NODES', 'DATA_DIR', 'BATCH_MAX', 'LOG_LEVEL', 'LOG_PRETTY', 'PORT', 'HOST'
]

/** Tuning variables a benchmark server does inherit from this shell (e.g. PG_POOL_SIZE=30 npm run bench); recorded with the results. */
export const INHERITED_VARIABLES = ['PG_POOL_SIZE', 'LOCK_TTL_MS', 'LOCK_WAIT_MS', 'SOLD_OUT_CACHE_MS']

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

export interface ApiAnswer<T = unknown> { status: number, body: { success: boolean, data?: T, error?: { code: string, message: string } } }

export async function api<T> (url: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<ApiAnswer<T>> {
  for (let attempt = 1; ; attempt++) {
    try {
      const res = await fetch(url + path, {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(30_000)
      })
      return { status: res.status, body: await res.json() as ApiAnswer<T>['body'] }
    } catch (err) {
      // only reads are retried: a POST that may have been applied is not sent twice
      if (method !== 'GET' || attempt >= 3) throw err
      await sleep(200 * attempt)
    }
  }
}

export interface CreatedEvent {
  eventId: string
  sections: Array<{ _id: string, capacity: number }>
}

export async function createEvent (url: string, name: string, capacities: number[]): Promise<CreatedEvent> {
  const answer = await api<{ _id: string, sections: Array<{ _id: string, capacity: number }> }>(url, 'POST', '/api/events', {
    name,
    sections: capacities.map((capacity, i) => ({ name: `S${i + 1}`, price: 10, capacity }))
  })
  if (answer.status !== 201 || answer.body.data === undefined) {
    throw new Error(`POST /api/events answered ${answer.status}: ${JSON.stringify(answer.body)}`)
  }
  return { eventId: answer.body.data._id, sections: answer.body.data.sections }
}

export function bookingBody (eventId: string, sectionId: string, userId: string): string {
  return JSON.stringify({ eventId, sectionId, qty: 1, userId })
}
