/** The little a SQL store needs from a driver: pg's Pool and PGlite both fit behind it. */
export interface SqlQueryable {
  query: <R = Record<string, any>>(text: string, params?: unknown[]) => Promise<{ rows: R[] }>
}

/**
 * A signal, where given, is the request's deadline: once it aborts, a client
 * whose server can stall (pg) drops the connection and starts nothing more;
 * the in-process PGlite cannot stall and ignores it.
 */
export interface SqlClient {
  query: <R = Record<string, any>>(text: string, params?: unknown[], signal?: AbortSignal) => Promise<{ rows: R[] }>
  /** Runs fn inside BEGIN/COMMIT on one connection; rolls back if fn throws. */
  transaction: <T>(fn: (tx: SqlQueryable) => Promise<T>, signal?: AbortSignal) => Promise<T>
  /** Runs fn's statements on one connection, each its own transaction (no BEGIN, no COMMIT). */
  session: <T>(fn: (conn: SqlQueryable) => Promise<T>, signal?: AbortSignal) => Promise<T>
}

/** SQLSTATEs after which the same transaction may simply be run again. */
const RETRYABLE_SQLSTATES = new Set([
  '40001', // serialization_failure
  '40P01', // deadlock_detected
  '23505' // unique_violation: a racing request stored the same idempotency key first
])

/** Node's socket errors: the connection could not be made, or was lost. */
const NETWORK_ERRORS = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN'
])

/** What pg and PGlite say, without a code, when a connection is gone or never came. */
const LOST_CONNECTION = /Connection terminated|timeout exceeded when trying to connect|is not queryable|PGlite is closed/i

function codeOf (err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : undefined
}

export function sqlState (err: unknown): string | undefined {
  const code = codeOf(err)
  return code !== undefined && !NETWORK_ERRORS.has(code) && /^[0-9A-Z]{5}$/.test(code) ? code : undefined
}

export function isRetryableSqlError (err: unknown): boolean {
  const state = sqlState(err)
  return state !== undefined && RETRYABLE_SQLSTATES.has(state)
}

/**
 * True when the database itself is out of reach (connection refused or lost,
 * server shutting down, too many connections): answered as 503, never as 500.
 * Anything else (a bad query, a programming error) stays an error.
 */
export function isSqlUnavailable (err: unknown): boolean {
  const code = codeOf(err)
  if (code !== undefined && NETWORK_ERRORS.has(code)) return true
  const state = sqlState(err)
  if (state !== undefined) return state.startsWith('08') || state.startsWith('57') || state === '53300'
  return err instanceof Error && LOST_CONNECTION.test(err.message)
}
