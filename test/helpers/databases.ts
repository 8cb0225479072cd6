/**
 * Fresh, empty databases for tests and benchmarks, and SQL access to what a
 * store wrote: a PostgreSQL database on the shared server (CREATE, then DROP
 * WITH (FORCE)), a temp directory for the embedded store (PGlite: empty, or
 * holding a fresh cluster), a MongoDB database name. The `...(t)` forms undo
 * themselves at teardown.
 */
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { cp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
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

/**
 * A temporary directory holding a fresh, empty PGlite cluster, removed at
 * teardown: what PGlite's first start makes of an empty directory (initdb, in
 * WebAssembly: seconds of CPU), copied from a template made once per install
 * and PGlite version (node_modules/.cache) and shared by every test process.
 * The app then opens it and creates its schema as on any first start. Tests of
 * a first start on an empty directory use tempDataDir.
 */
export async function pgliteDataDir (t: TestContext, prefix = 'booking-data-'): Promise<string> {
  const template = await pgliteTemplate()
  const dir = tempDataDir(t, prefix)
  // asynchronous: a synchronous copy of tens of MB would stall this process's other timers (a reachability check, a request)
  await cp(template, dir, { recursive: true })
  return dir
}

let template: Promise<string> | undefined
const pgliteTemplate = (): Promise<string> => (template ??= makePgliteTemplate())

const ROOT = fileURLToPath(new URL('../../', import.meta.url))

/** node_modules/.cache/booking-tests (gone with the next npm ci), or a directory in tmp where node_modules is not writable. */
function cacheDir (): string {
  for (const dir of [join(ROOT, 'node_modules/.cache/booking-tests'), join(tmpdir(), `booking-tests-${process.getuid?.() ?? 'user'}`)]) {
    try {
      mkdirSync(dir, { recursive: true })
      return dir
    } catch {}
  }
  throw new Error('no writable directory for the test caches')
}

async function makePgliteTemplate (): Promise<string> {
  const { version } = JSON.parse(readFileSync(join(ROOT, 'node_modules/@electric-sql/pglite/package.json'), 'utf8')) as { version: string }
  const cache = cacheDir()
  const final = join(cache, `pglite-${version}`)
  // one process initialises it (lock: a directory made atomically, holding its pid); the others wait for the rename
  const lock = `${final}.lock`
  for (;;) {
    if (existsSync(final)) return final
    try {
      mkdirSync(lock)
      writeFileSync(join(lock, 'pid'), String(process.pid))
      break
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      if (!lockHolderAlive(lock)) rmSync(lock, { recursive: true, force: true })
      else await sleep(100)
    }
  }
  try {
    // what a builder that died left behind
    for (const name of readdirSync(cache)) if (name.startsWith(`pglite-${version}.building-`)) rmSync(join(cache, name), { recursive: true, force: true })
    // built aside and renamed into place: the template is always a whole, closed cluster. In a
    // child process: initdb's seconds of WebAssembly would stall this one's event loop
    const building = mkdtempSync(join(cache, `pglite-${version}.building-`))
    const init = "const { PGlite } = await import('@electric-sql/pglite'); await (await PGlite.create(process.argv[1])).close()"
    const child = spawn(process.execPath, ['--input-type=module', '-e', init, building], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
    const [code] = await once(child, 'close') as [number | null]
    if (code !== 0) {
      rmSync(building, { recursive: true, force: true })
      throw new Error(`initialising a PGlite data directory exited with ${code}: ${stderr}`)
    }
    renameSync(building, final)
    return final
  } finally {
    rmSync(lock, { recursive: true, force: true })
  }
}

function lockHolderAlive (lock: string): boolean {
  let pid: number
  try {
    pid = Number(readFileSync(join(lock, 'pid'), 'utf8'))
  } catch {
    // just made, its pid not written yet (or its maker died right then)
    try { return Date.now() - statSync(lock).mtimeMs < 10_000 } catch { return false }
  }
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
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
