/**
 * Fresh, empty databases for tests and benchmarks, and SQL access to what a
 * store wrote: a PostgreSQL database on the shared server (CREATE, then DROP
 * WITH (FORCE)), a temp directory for the embedded store (PGlite), a MongoDB
 * database name. The `...(t)` forms undo themselves at teardown.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import { MongoClient } from 'mongodb'
import pg from 'pg'
import type { TestContext } from './context.ts'

export const PG_ADMIN_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
export const MONGODB_URI = process.env.MONGODB_URI

export interface Sql {
  query: <R = any>(text: string, params?: unknown[]) => Promise<R[]>
}

/** Runs fn with SQL access to a database: a postgres:// URL, or a PGlite data directory (not open elsewhere). */
export async function withSql<T> (location: string, fn: (sql: Sql) => Promise<T>): Promise<T> {
  if (/^postgres(ql)?:\/\//.test(location)) {
    const client = new pg.Client({ connectionString: location })
    await client.connect()
    try {
      return await fn({ query: async <R>(text: string, params?: unknown[]) => (await client.query(text, params)).rows as R[] })
    } finally {
      await client.end()
    }
  }
  const lite = await PGlite.create(location)
  try {
    return await fn({ query: async <R>(text: string, params?: unknown[]) => (await lite.query<R>(text, params)).rows })
  } finally {
    await lite.close()
  }
}

/** The same server URL pointing at another database. */
function withDatabase (uri: string, db: string): string {
  const url = new URL(uri)
  url.pathname = `/${db}`
  return url.toString()
}

const uniqueName = (prefix: string): string => `${prefix}_${process.pid}_${randomBytes(4).toString('hex')}`

export interface PgDatabase { name: string, url: string, drop: () => Promise<void> }

/** A new, empty database on the shared PostgreSQL server; drop() is safe to call twice. */
export async function createPgDatabase (prefix: string, adminUrl = PG_ADMIN_URL): Promise<PgDatabase> {
  const name = uniqueName(prefix)
  await withSql(adminUrl, async sql => await sql.query(`CREATE DATABASE ${name}`))
  return {
    name,
    url: withDatabase(adminUrl, name),
    drop: async () => { await withSql(adminUrl, async sql => await sql.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)) }
  }
}

/** A fresh PostgreSQL database for one test (dropped at teardown); returns its URL. */
export async function createTestDatabase (t: TestContext): Promise<string> {
  const db = await createPgDatabase('booking_test')
  t.teardown(db.drop)
  return db.url
}

/** A new temporary directory; the caller removes it. */
export function newTempDir (prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix))
}

/** A temporary directory (for the embedded store), removed at teardown. */
export function tempDataDir (t: TestContext, prefix = 'booking-data-'): string {
  const dir = newTempDir(prefix)
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** MONGODB_URI pointing at a fresh database name, dropped at teardown. */
export function mongoTestDatabase (t: TestContext): string {
  if (MONGODB_URI === undefined) throw new Error('MONGODB_URI is not set')
  const uri = withDatabase(MONGODB_URI, uniqueName('booking_test'))
  t.teardown(async () => {
    const client = new MongoClient(uri)
    try {
      await client.db().dropDatabase()
    } finally {
      await client.close()
    }
  })
  return uri
}
