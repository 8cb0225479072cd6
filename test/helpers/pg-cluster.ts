/**
 * Throwaway PostgreSQL clusters for fault tests: pg_ctl in a temp dir on a
 * spare port (as the postgres OS user when we are root), each on a copy of one
 * initdb per process. Only the cluster started here is ever stopped, never the
 * machine's shared server; it is removed at teardown, and stopped if the
 * process ends first.
 */
import { execFile, spawnSync } from 'node:child_process'
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import type { TestContext } from './context.ts'
import { newTempDir, withSql } from './databases.ts'
import { onProcessExit } from './exit-hooks.ts'
import { alive, freezeTree, signalTree } from './processes.ts'
import { freePort } from './server-process.ts'
import type { ThrowawayServer } from './throwaway-server.ts'

const execFileAsync = promisify(execFile)
const isRoot = process.getuid?.() === 0

export interface PgCluster extends ThrowawayServer {
  /** the `postgres` database, user postgres, trust auth */
  url: string
  /** pg_ctl stop: `fast` (the default) rolls back and disconnects clients, `immediate` quits without a checkpoint */
  stop: (mode?: 'fast' | 'immediate') => Promise<void>
  /** SQL as the superuser, e.g. SELECT pg_terminate_backend(pid) ... */
  admin: <R = any>(text: string, params?: unknown[]) => Promise<R[]>
}

function pgBinDir (): string | undefined {
  const onPath = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' })
  if (onPath.error === undefined && onPath.status === 0) {
    const dir = onPath.stdout.trim()
    if (existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'pg_ctl'))) return dir
  }
  const base = '/usr/lib/postgresql'
  if (!existsSync(base)) return undefined
  const versions = readdirSync(base)
    .filter(v => existsSync(join(base, v, 'bin', 'initdb')) && existsSync(join(base, v, 'bin', 'pg_ctl')))
    .sort((a, b) => Number(b) - Number(a))
  return versions.length > 0 ? join(base, versions[0], 'bin') : undefined
}

function postgresUser (): { uid: number, gid: number } | undefined {
  const uid = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' })
  const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' })
  if (uid.status !== 0 || gid.status !== 0) return undefined
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) }
}

/** Why no throwaway cluster can run here, or undefined when one can. */
export function pgClusterMissing (): string | undefined {
  if (pgBinDir() === undefined) return 'PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or under /usr/lib/postgresql/*/bin'
  if (isRoot) {
    if (postgresUser() === undefined) return 'running as root and there is no postgres OS user to run initdb as'
    if (spawnSync('runuser', ['--help']).error !== undefined) return 'running as root and runuser is not installed'
  }
  return undefined
}

/** A program run as the postgres user (when we are root) or as ourselves. */
const asPostgres = (program: string, args: string[]): [string, string[]] =>
  isRoot ? ['runuser', ['-u', 'postgres', '--', program, ...args]] : [program, args]

/** A new temp directory the postgres user owns (when we are root). */
function postgresTempDir (prefix: string): string {
  const dir = newTempDir(prefix)
  if (isRoot) {
    const user = postgresUser()!
    chownSync(dir, user.uid, user.gid)
  }
  return dir
}

let template: Promise<string> | undefined

/**
 * A freshly initialised data directory, made once per process and copied for
 * each cluster: initdb takes seconds, a copy a fraction of one. Removed when
 * the process ends.
 */
async function initdbOnce (bin: string): Promise<string> {
  template ??= (async () => {
    const dir = postgresTempDir('booking-pg-template-')
    onProcessExit(() => { rmSync(dir, { recursive: true, force: true }) })
    const data = join(dir, 'data')
    if (!isRoot) mkdirSync(data, { mode: 0o700 })
    try {
      await execFileAsync(...asPostgres(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-N', '-E', 'UTF8']), { cwd: dir, timeout: 120_000 })
    } catch (err) {
      throw new Error(`initdb -D ${data} failed: ${(err as Error).message}`)
    }
    return data
  })()
  return await template
}

/** A new cluster, started; removed at teardown. */
export async function throwawayPgCluster (t: TestContext): Promise<PgCluster> {
  const bin = pgBinDir()
  if (bin === undefined) throw new Error(pgClusterMissing())
  const dir = postgresTempDir('booking-pg-')
  const data = join(dir, 'data')
  const port = await freePort()
  if (port === 5432) throw new Error('refusing the shared PostgreSQL port')
  const command = (tool: string, args: string[]): [string, string[]] => asPostgres(join(bin, tool), args)
  /** Runs a PostgreSQL tool as the postgres user (root) or as ourselves. */
  const run = async (tool: string, args: string[]): Promise<void> => {
    try {
      await execFileAsync(...command(tool, args), { cwd: dir, timeout: 120_000 })
    } catch (err) {
      const log = existsSync(join(dir, 'log')) ? readFileSync(join(dir, 'log'), 'utf8') : ''
      throw new Error(`${tool} ${args.join(' ')} failed: ${(err as Error).message}\n${log}`)
    }
  }
  const pidFile = join(data, 'postmaster.pid')
  const pid = (): number | undefined => {
    const value = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').split('\n')[0]) : NaN
    return Number.isInteger(value) && alive(value) ? value : undefined
  }
  const cluster: PgCluster = {
    port,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    async start () {
      await run('pg_ctl', ['-D', data, '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1`, '-l', join(dir, 'log'), '-w', '-t', '60', 'start'])
    },
    async stop (mode = 'fast') {
      cluster.thaw()
      await run('pg_ctl', ['-D', data, '-m', mode, '-w', '-t', '60', 'stop'])
    },
    async kill () {
      const postmaster = pid()
      if (postmaster === undefined) return
      signalTree(postmaster, 'SIGKILL')
      while (alive(postmaster)) await sleep(20)
      // a zombie nobody reaps still looks alive to the next postmaster: its lock files go
      for (const lock of [pidFile, join(dir, `.s.PGSQL.${port}.lock`)]) rmSync(lock, { force: true })
    },
    async freeze () {
      const postmaster = pid()
      if (postmaster !== undefined) await freezeTree(postmaster)
    },
    thaw () {
      const postmaster = pid()
      if (postmaster !== undefined) signalTree(postmaster, 'SIGCONT')
    },
    pid,
    admin: async (text, params) => await withSql(cluster.url, async sql => await sql.query(text, params))
  }
  // a crashed test run must not leave a postmaster behind
  const offExit = onProcessExit(() => {
    cluster.thaw()
    if (pid() !== undefined) spawnSync(...command('pg_ctl', ['-D', data, '-m', 'immediate', 'stop']))
    rmSync(dir, { recursive: true, force: true })
  })
  t.teardown(async () => {
    offExit()
    if (pid() !== undefined) await cluster.stop('immediate').catch(() => {})
    rmSync(dir, { recursive: true, force: true })
  })
  // cp -a as the postgres user: its files, its modes (a data directory must be 0700)
  await execFileAsync(...asPostgres('cp', ['-a', await initdbOnce(bin), data]), { timeout: 120_000 })
  await cluster.start()
  return cluster
}
