/** The little a SQL store needs from a driver: pg's Pool and PGlite both fit behind it. */
export interface SqlQueryable {
  query: <R = Record<string, any>>(text: string, params?: unknown[]) => Promise<{ rows: R[] }>
}

export interface SqlClient extends SqlQueryable {
  /** Runs fn inside BEGIN/COMMIT on one connection; rolls back if fn throws. */
  transaction: <T>(fn: (tx: SqlQueryable) => Promise<T>) => Promise<T>
  close: () => Promise<void>
}

/** SQLSTATEs after which the same transaction may simply be run again. */
const RETRYABLE_SQLSTATES = new Set([
  '40001', // serialization_failure
  '40P01', // deadlock_detected
  '23505' // unique_violation: a racing request stored the same idempotency key first
])

export function sqlState (err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined
}

export function isRetryableSqlError (err: unknown): boolean {
  const state = sqlState(err)
  return state !== undefined && RETRYABLE_SQLSTATES.has(state)
}

/**
 * True when the database itself is out of reach (connection refused or lost,
 * server shutting down): answered as 503, never as 500.
 */
export function isSqlUnavailable (err: unknown): boolean {
  const state = sqlState(err)
  if (state !== undefined) return state.startsWith('08') || state.startsWith('57') || state === '53300'
  const message = err instanceof Error ? err.message : ''
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' ||
    /connect|terminat|timeout|closed|ECONN/i.test(message)
}
