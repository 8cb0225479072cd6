import pg from 'pg'
import type { SqlClient, SqlQueryable } from './sql-client.ts'

// numeric stays a string in pg; every numeric we read is cast to float8 in SQL.

/**
 * Queries with parameters run as named prepared statements: PostgreSQL parses
 * and plans each text once per connection, not once per batch. The store's
 * texts are a small fixed set, so the names stay few.
 */
function preparedNames () {
  const names = new Map<string, string>()
  return (text: string, values?: unknown[]): pg.QueryConfig => {
    if (values === undefined || values.length === 0) return { text }
    let name = names.get(text)
    if (name === undefined) {
      name = `q${names.size}`
      names.set(text, name)
    }
    return { name, text, values }
  }
}

/** A SqlClient over a pg Pool. The pool belongs to the caller (plugins/postgres.ts), who ends it. */
export function pgClient (pool: pg.Pool): SqlClient {
  const prepared = preparedNames()
  return {
    query: async <R>(text: string, params?: unknown[]) => await pool.query(prepared(text, params)) as unknown as { rows: R[] },
    async transaction (fn) {
      const conn = await pool.connect()
      const tx: SqlQueryable = { query: async <R>(text: string, params?: unknown[]) => await conn.query(prepared(text, params)) as unknown as { rows: R[] } }
      let broken: Error | undefined
      try {
        await conn.query('BEGIN')
        const result = await fn(tx)
        await conn.query('COMMIT')
        return result
      } catch (err) {
        try {
          await conn.query('ROLLBACK')
        } catch (rollbackErr) {
          broken = rollbackErr as Error // the connection is unusable: destroy it, not back to the pool
        }
        throw err
      } finally {
        conn.release(broken)
      }
    }
  }
}
