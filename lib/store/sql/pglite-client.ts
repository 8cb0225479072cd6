import type { PGlite } from '@electric-sql/pglite'
import { createPgConfig } from '@electric-sql/pglite/node-postgres'
import pg from 'pg'
import { preparedStatements } from './pg-client.ts'
import type { SqlClient, SqlQueryable } from './client.ts'

/**
 * A SqlClient over PGlite (PostgreSQL compiled to WASM, in this process),
 * spoken to by pg's Client through PGlite's node-postgres connection: queries
 * with parameters run as named prepared statements, parsed and planned once
 * (PGlite's own query parses and plans every call: half the time of a small
 * batch's statement). One session, one statement at a time: a transaction
 * has it to itself until its COMMIT or ROLLBACK. The database
 * belongs to the caller (plugins/embedded.ts), who closes it.
 */
export function pgliteClient (db: PGlite): SqlClient {
  const conn = new pg.Client(createPgConfig(db) as unknown as pg.ClientConfig)
  const connected = conn.connect()
  connected.catch(() => {}) // each caller awaits it and gets its error
  const statements = preparedStatements()(conn)
  let last: Promise<void> = Promise.resolve()
  /** fn alone on the session, after every caller before it */
  async function alone<T> (fn: () => Promise<T>): Promise<T> {
    const before = last
    let done!: () => void
    last = new Promise<void>(resolve => { done = resolve })
    try {
      await before
      await connected
      return await fn()
    } finally {
      done()
    }
  }
  // a statement outside a transaction takes its turn on the session, and autocommits
  const turnByTurn: SqlQueryable = { query: async (text, params) => await alone(async () => await statements.query(text, params)) }
  return {
    query: turnByTurn.query,
    session: async (fn) => await fn(turnByTurn),
    transaction: async (fn) => await alone(async () => {
      await statements.query('BEGIN')
      try {
        const result = await fn(statements)
        await statements.query('COMMIT')
        return result
      } catch (err) {
        // the error that ended it is the answer, whatever the rollback meets
        await statements.query('ROLLBACK').catch(() => {})
        throw err
      }
    })
  }
}
