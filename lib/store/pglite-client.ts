import type { PGlite } from '@electric-sql/pglite'
import type { SqlClient } from './sql-client.ts'

/**
 * A SqlClient over PGlite (PostgreSQL compiled to WASM, in this process). The
 * database belongs to the caller (plugins/embedded.ts), who closes it.
 */
export function pgliteClient (db: PGlite): SqlClient {
  return {
    query: async (text, params) => await db.query(text, params),
    transaction: async (fn) => await db.transaction(async (tx) => await fn({ query: async (text, params) => await tx.query(text, params) })),
    // one database in this process: every statement runs on it
    session: async (fn) => await fn({ query: async (text, params) => await db.query(text, params) })
  }
}
