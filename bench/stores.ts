/**
 * The stores a benchmark server runs on, each handing out fresh, empty
 * databases: the embedded store (a PGlite data directory in a temp dir) and
 * PostgreSQL + Redis (a new database per run, dropped after; RedLock on
 * REDIS_URL). Each database also gives SQL access to its data, for the
 * invariant checks.
 */
import { randomBytes } from 'node:crypto'
import { cpSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import pg from 'pg'
import { missing, PG_ADMIN_URL, REDIS_URL } from '../test/helpers/services.ts'
import type { StoreName } from './options.ts'

export interface Sql {
  query: <R>(text: string, params?: unknown[]) => Promise<R[]>
}

export interface Database {
  /** variables that point a server at this database */
  env: Record<string, string>
  /** where the data lives, for the report (no credentials) */
  where: string
  /** runs fn with SQL access to the data; embedded: only while no server has the directory open */
  withSql: <T>(fn: (sql: Sql) => Promise<T>) => Promise<T>
  drop: () => Promise<void>
}

export interface StoreBackend {
  name: StoreName
  label: string
  create: () => Promise<Database>
  close: () => Promise<void>
}

export type OpenedStore = { backend: StoreBackend } | { skipped: string }

/** A URL as it may be printed: any password replaced. */
export function redact (url: string): string {
  const u = new URL(url)
  if (u.password !== '') u.password = '***'
  return u.toString()
}

/**
 * The embedded store. PGlite's first start of a data directory (initdb in
 * WASM) takes seconds, so one template directory is initialised once and
 * each run gets a copy of it: a fresh, empty database in a new directory.
 */
async function embedded (): Promise<StoreBackend> {
  const root = mkdtempSync(join(tmpdir(), 'booking-bench-'))
  const template = join(root, 'template')
  const db = await PGlite.create(template)
  await db.close()
  let n = 0
  return {
    name: 'embedded',
    label: 'embedded (PGlite)',
    async create () {
      const dir = join(root, `db-${++n}`)
      cpSync(template, dir, { recursive: true })
      return {
        env: { STORE: 'embedded', DATA_DIR: dir },
        where: dir,
        async withSql (fn) {
          const lite = await PGlite.create(dir)
          try {
            return await fn({ query: async <R>(text: string, params?: unknown[]) => (await lite.query<R>(text, params)).rows })
          } finally {
            await lite.close()
          }
        },
        drop: async () => { rmSync(dir, { recursive: true, force: true }) }
      }
    },
    close: async () => { rmSync(root, { recursive: true, force: true }) }
  }
}

async function adminQuery (text: string): Promise<void> {
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 5000 })
  await admin.connect()
  try {
    await admin.query(text)
  } finally {
    await admin.end()
  }
}

/** PostgreSQL + Redis: a database per run (CREATE / DROP ... WITH (FORCE)), the lock on REDIS_URL. */
async function postgres (): Promise<StoreBackend> {
  await adminQuery('SELECT 1')
  return {
    name: 'postgres',
    label: 'PostgreSQL + Redis',
    async create () {
      const name = `bench_${process.pid}_${randomBytes(4).toString('hex')}`
      await adminQuery(`CREATE DATABASE ${name}`)
      const url = new URL(PG_ADMIN_URL)
      url.pathname = `/${name}`
      const databaseUrl = url.toString()
      return {
        env: { STORE: 'postgres', DATABASE_URL: databaseUrl, REDIS_NODES: REDIS_URL },
        where: `${redact(databaseUrl)} + lock on ${REDIS_URL.split(',').map(redact).join(',')}`,
        async withSql (fn) {
          const client = new pg.Client({ connectionString: databaseUrl })
          await client.connect()
          try {
            return await fn({ query: async <R>(text: string, params?: unknown[]) => (await client.query(text, params)).rows as R[] })
          } finally {
            await client.end()
          }
        },
        drop: async () => { await adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) }
      }
    },
    close: async () => {}
  }
}

/** Opens a store, or says why it cannot run here. */
export async function openStore (name: StoreName): Promise<OpenedStore> {
  if (name === 'embedded') return { backend: await embedded() }
  const reason = await missing('postgres', 'redis')
  if (reason !== undefined) return { skipped: reason }
  try {
    return { backend: await postgres() }
  } catch (err) {
    return { skipped: `PostgreSQL at ${redact(PG_ADMIN_URL)}: ${err instanceof Error ? err.message : String(err)}` }
  }
}
