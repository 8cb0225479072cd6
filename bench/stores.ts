/**
 * The stores a benchmark server runs on, each handing out fresh, empty
 * databases: the embedded store (a PGlite data directory in a temp dir) and
 * PostgreSQL + Redis (a new database per run, dropped after; RedLock on
 * REDIS_URL). Each database also gives SQL access to its data, for the
 * invariant checks.
 */
import { cpSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import { createPgDatabase, newTempDir, PG_ADMIN_URL, withSql, type Sql } from '../test/helpers/databases.ts'
import { missing, REDIS_URL } from '../test/helpers/services.ts'
import type { StoreName } from './options.ts'

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
  const root = newTempDir('booking-bench-')
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
        withSql: async (fn) => await withSql(dir, fn),
        drop: async () => { rmSync(dir, { recursive: true, force: true }) }
      }
    },
    close: async () => { rmSync(root, { recursive: true, force: true }) }
  }
}

/** PostgreSQL + Redis: a database per run (CREATE / DROP ... WITH (FORCE)), the lock on REDIS_URL. */
async function postgres (): Promise<StoreBackend> {
  await withSql(PG_ADMIN_URL, async sql => await sql.query('SELECT 1'))
  return {
    name: 'postgres',
    label: 'PostgreSQL + Redis',
    async create () {
      const db = await createPgDatabase('bench')
      return {
        env: { STORE: 'postgres', DATABASE_URL: db.url, REDIS_NODES: REDIS_URL },
        where: `${redact(db.url)} + lock on ${REDIS_URL.split(',').map(redact).join(',')}`,
        withSql: async (fn) => await withSql(db.url, fn),
        drop: db.drop
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
