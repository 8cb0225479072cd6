import pg from 'pg'
import type { SqlClient, SqlQueryable } from './client.ts'

// numeric stays a string in pg; every numeric we read is cast to float8 in SQL.

/**
 * Statements on a pg Pool or connection (PostgreSQL's, or PGlite's through
 * its node-postgres connection), those with parameters as named prepared
 * statements: the database parses and plans each text once per connection,
 * not once per batch. The store's texts are a small fixed set, so the names
 * stay few.
 */
export function preparedStatements () {
  const names = new Map<string, string>()
  const prepared = (text: string, values?: unknown[]): pg.QueryConfig => {
    if (values === undefined || values.length === 0) return { text }
    let name = names.get(text)
    if (name === undefined) {
      name = `q${names.size}`
      names.set(text, name)
    }
    return { name, text, values: values.map(v => Array.isArray(v) ? arrayLiteral(v) : v) }
  }
  return (on: { query: (config: pg.QueryConfig) => Promise<pg.QueryResult> }): SqlQueryable => ({
    query: async <R>(text: string, params?: unknown[]) => await on.query(prepared(text, params)) as unknown as { rows: R[] }
  })
}

const QUOTED = /["\\]/g

/**
 * An array parameter as PostgreSQL's array literal, in one pass: pg would
 * escape each element with two regular expressions, and a batch's write
 * passes ~25 arrays of up to BATCH_MAX elements (~2% of a booking's CPU).
 * Strings, numbers, booleans, dates and nulls only; any other element is
 * left to pg.
 */
export function arrayLiteral (values: readonly unknown[]): unknown {
  let text = '{'
  for (let i = 0; i < values.length; i++) {
    const value = values[i]
    if (i > 0) text += ','
    if (value === null || value === undefined) text += 'NULL'
    else if (typeof value === 'string') text += `"${value.includes('"') || value.includes('\\') ? value.replace(QUOTED, '\\$&') : value}"`
    else if (typeof value === 'number' || typeof value === 'boolean') text += `"${String(value)}"`
    else if (value instanceof Date) text += `"${value.toISOString()}"`
    else return values
  }
  return text + '}'
}

/** A pooled connection, never handed over once the signal aborted: one that comes later goes straight back. */
async function connect (pool: pg.Pool, signal?: AbortSignal): Promise<pg.PoolClient> {
  signal?.throwIfAborted()
  const pending = pool.connect()
  if (signal === undefined) return await pending
  return await new Promise((resolve, reject) => {
    const onAbort = (): void => {
      reject(signal.reason)
      pending.then(conn => { conn.release() }, () => {})
    }
    signal.addEventListener('abort', onAbort, { once: true })
    pending.then(conn => {
      signal.removeEventListener('abort', onAbort)
      resolve(conn)
    }, (err: unknown) => {
      signal.removeEventListener('abort', onAbort)
      reject(err)
    })
  })
}

/**
 * Runs fn on one checked-out connection. The connection's own `error` event
 * (its session dropped between two queries: pg_terminate_backend, a server
 * shutting down) is heard here, so it never reaches the process as an
 * uncaught error; such a connection, or one fn failed on, is destroyed rather
 * than pooled. When the signal aborts, the connection is destroyed at once:
 * a query in flight fails (pg closes the socket) and nothing more is sent.
 */
async function onConnection<T> (pool: pg.Pool, signal: AbortSignal | undefined, fn: (conn: pg.PoolClient, failed: (err: Error) => void) => Promise<T>): Promise<T> {
  const conn = await connect(pool, signal)
  let broken: Error | undefined
  let released = false
  const release = (err?: Error): void => {
    if (released) return
    released = true
    conn.release(err)
  }
  const onError = (err: Error): void => { broken ??= err }
  const onAbort = (): void => {
    broken ??= signal?.reason as Error
    release(broken)
  }
  conn.on('error', onError)
  signal?.addEventListener('abort', onAbort, { once: true })
  try {
    return await fn(conn, err => { broken ??= err })
  } finally {
    signal?.removeEventListener('abort', onAbort)
    // a destroyed connection keeps its listener: a late socket error on it stays handled
    if (broken === undefined) conn.off('error', onError)
    release(broken)
  }
}

/**
 * pg's Client with an `error` listener from birth: a server that drops a
 * session can make pg emit `error` on a client nobody listens to at that
 * moment (still connecting, or between the pool's hands and ours), which
 * would end the process. Errors still reach the queries in flight, the pool
 * still removes the client, and onConnection still destroys it.
 */
export class GuardedClient extends pg.Client {
  constructor (config?: string | pg.ClientConfig) {
    super(config)
    this.on('error', () => {})
  }
}

/** A SqlClient over a pg Pool (made with `Client: GuardedClient`). The pool belongs to the caller (plugins/postgres.ts), who ends it. */
export function pgClient (pool: pg.Pool): SqlClient {
  const statementsOn = preparedStatements()
  return {
    async query<R> (text: string, params?: unknown[], signal?: AbortSignal) {
      if (signal === undefined) return await statementsOn(pool).query<R>(text, params)
      return await onConnection(pool, signal, async conn => await statementsOn(conn).query<R>(text, params))
    },
    session: async (fn, signal) => await onConnection(pool, signal, async conn => await fn(statementsOn(conn))),
    async transaction (fn, signal) {
      return await onConnection(pool, signal, async (conn, failed) => {
        const tx = statementsOn(conn)
        try {
          // awaited before the first statement: pg 8 queues a query sent while another runs, which it
          // deprecates (a DeprecationWarning on stderr) and pg 9 refuses
          await conn.query('BEGIN')
          const result = await fn(tx)
          await conn.query('COMMIT')
          return result
        } catch (err) {
          if (signal?.aborted === true) throw signal.reason
          try {
            await conn.query('ROLLBACK')
          } catch (rollbackErr) {
            failed(rollbackErr as Error) // the connection is unusable: destroy it, not back to the pool
          }
          throw err
        }
      })
    }
  }
}
