/** lib/store/sql/data-dir-lock.ts in one process: held, refused, released, stale locks taken over. */
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { tempDataDir } from '../helpers/databases.ts'
import { DataDirLockedError, LOCK_FILE, lockDataDir } from '../../lib/store/sql/data-dir-lock.ts'

/** The pid of a process that has exited. */
function deadPid (): number {
  const { stdout } = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' })
  return Number(stdout.trim())
}

t.test('held: a second lock on the directory is refused, naming the holder; released: it can be taken again', async t => {
  const dir = tempDataDir(t)
  const release = lockDataDir(dir)
  t.same(JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')), { pid: process.pid, host: hostname() }, 'the lock file names this process')
  const err = (() => { try { lockDataDir(dir) } catch (e) { return e } })()
  t.type(err, DataDirLockedError)
  t.match((err as Error).message, `DATA_DIR ${dir} is in use by process ${process.pid}`)
  release()
  t.notOk(existsSync(join(dir, LOCK_FILE)), 'released: the file is gone')
  release() // twice is harmless
  lockDataDir(dir)()
})

t.test('a lock whose holder is gone is taken over', async t => {
  const dir = tempDataDir(t)
  const gone = deadPid()
  writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: gone, host: hostname() }))
  const release = lockDataDir(dir)
  t.same(JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')).pid, process.pid, `pid ${gone} had exited: the lock is this process's now`)
  release()
})

t.test('a live holder is respected: another process (our parent) and another host', async t => {
  const dir = tempDataDir(t)
  writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: process.ppid, host: hostname() }))
  t.throws(() => lockDataDir(dir), { message: `DATA_DIR ${dir} is in use by process ${process.ppid} (one process per data directory)` })
  writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: 12345, host: 'another-host' }))
  t.throws(() => lockDataDir(dir), { message: `DATA_DIR ${dir} is in use by process 12345 on host another-host (one process per data directory)` },
    'a process on another host cannot be checked: taken as alive')
})

t.test('a lock file naming this pid, not held by this process (a previous run with the same pid, as pid 1 in a container), is stale', async t => {
  const dir = tempDataDir(t)
  writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: process.pid, host: hostname() }))
  const release = lockDataDir(dir)
  t.pass('taken')
  release()
})
