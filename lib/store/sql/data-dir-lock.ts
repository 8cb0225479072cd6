/**
 * One process per embedded data directory. Two PGlite instances on one
 * directory each keep their own copy of the database in memory and overwrite
 * each other's files, so a second process must refuse to start.
 *
 * The lock is a file in the directory naming its holder (pid and host),
 * created atomically (a hard link, which fails when the file exists). A lock
 * whose holder is gone (a crash, SIGKILL) is taken over at once: its pid is
 * checked with signal 0. A holder on another host (a container sharing the
 * volume) cannot be checked, so it is taken to be alive.
 */
import { linkSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'

export const LOCK_FILE = 'service.lock'

interface Holder { pid: number, host: string }

export class DataDirLockedError extends Error {
  readonly holder: Holder

  constructor (dir: string, holder: Holder) {
    const where = holder.host === hostname() ? '' : ` on host ${holder.host}`
    super(`DATA_DIR ${dir} is in use by process ${holder.pid}${where} (one process per data directory)`)
    this.holder = holder
  }
}

/** Lock files this process holds: a second store in the same process is refused too. */
const heldHere = new Set<string>()

/** The holder a lock file names; undefined when there is no file. */
function readHolder (path: string): Holder | undefined {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
  try {
    const { pid, host } = JSON.parse(text) as Partial<Holder>
    if (Number.isInteger(pid) && typeof host === 'string') return { pid: pid!, host }
  } catch {}
  // not written by this code: nobody can be checked, so it is stale
  return { pid: 0, host: hostname() }
}

function isAlive ({ pid, host }: Holder): boolean {
  if (host !== hostname()) return true
  // our own pid in a file we do not hold: a previous run that had the same pid (pid 1 in a container)
  if (pid <= 0 || pid === process.pid) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM' // alive, another user's
  }
}

/**
 * Moves a stale lock aside. If another process replaced it meanwhile (it judged
 * the same holder stale and took over first), that new lock is put back.
 */
function removeStale (path: string, stale: Holder): void {
  const aside = `${path}.stale-${process.pid}`
  try {
    renameSync(path, aside)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
    throw err
  }
  const moved = readHolder(aside)
  if (moved !== undefined && (moved.pid !== stale.pid || moved.host !== stale.host)) {
    try { linkSync(aside, path) } catch {}
  }
  rmSync(aside, { force: true })
}

/**
 * Takes the directory's lock, or throws DataDirLockedError naming the live
 * holder. Returns the release function (idempotent).
 */
export function lockDataDir (dir: string): () => void {
  const path = join(dir, LOCK_FILE)
  const me: Holder = { pid: process.pid, host: hostname() }
  if (heldHere.has(path)) throw new DataDirLockedError(dir, me)
  // written whole under a private name first: a reader never sees a half-written lock
  const mine = `${path}.${process.pid}`
  writeFileSync(mine, `${JSON.stringify(me)}\n`)
  try {
    for (let attempt = 1; ; attempt++) {
      try {
        linkSync(mine, path)
        break
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt === 3) throw err
      }
      const holder = readHolder(path)
      if (holder === undefined) continue // released meanwhile
      if (isAlive(holder)) throw new DataDirLockedError(dir, holder)
      removeStale(path, holder)
    }
  } finally {
    rmSync(mine, { force: true })
  }
  heldHere.add(path)
  return () => {
    if (!heldHere.delete(path)) return
    const holder = readHolder(path)
    if (holder?.pid === me.pid && holder.host === me.host) rmSync(path, { force: true })
  }
}
