/**
 * One process per embedded data directory, with real processes: a second
 * process on a directory in use exits 1 with one line naming the directory
 * and the holder's pid; a lock left by SIGKILL does not block the next start,
 * and what the killed process stored is there.
 */
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { createEvent } from '../helpers/create-event.ts'
import { pgliteDataDir } from '../helpers/databases.ts'
import { urlClient } from '../helpers/http-client.ts'
import { runToExit, startServer } from '../helpers/server-process.ts'
import { principals } from '../helpers/tokens.ts'

const as = await principals()

t.test('a second process on the same DATA_DIR refuses to start; after a SIGKILL the next one starts', async t => {
  const dataDir = await pgliteDataDir(t)
  const first = await startServer({ DATA_DIR: dataDir })
  t.teardown(async () => await first.kill())
  const { eventId, sectionId } = await createEvent(urlClient(first.url, { headers: as.organizer }), [5], { name: 'Before the kill' })
  const booked = await urlClient(first.url, { headers: as.service }).request('POST', '/bookings', { eventId, sectionId, qty: 2, userId: 'u1' })
  t.equal(booked.status, 201)

  const second = await runToExit({ DATA_DIR: dataDir })
  t.equal(second.code, 1, 'the second process exits 1')
  t.same(second.stderr, [`start-up failed: DATA_DIR ${dataDir} is in use by process ${first.child.pid} (one process per data directory)`],
    'one line naming the directory and the holder\'s pid')
  t.equal((await fetch(`${first.url}/health`)).status, 200, 'the holder runs on, untouched')

  await first.kill()
  const lockFile = join(dataDir, 'service.lock')
  t.ok(existsSync(lockFile), 'SIGKILL left the lock file behind')
  t.equal(JSON.parse(readFileSync(lockFile, 'utf8')).pid, first.child.pid, 'naming the killed process')

  const next = await startServer({ DATA_DIR: dataDir })
  t.teardown(async () => await next.stop())
  t.equal(JSON.parse(readFileSync(lockFile, 'utf8')).pid, next.child.pid, 'the next process took the stale lock over')
  const event = await urlClient(next.url).request('GET', `/api/events/${eventId}`)
  t.equal(event.status, 200, 'the event created before the kill is there')
  t.equal(event.body.data.sections[0].remaining, 3, 'and its booking')
  const list = await urlClient(next.url, { headers: as.service }).request('GET', `/bookings?eventId=${eventId}`)
  t.match(list.body.data, { total: 1, items: [{ _id: booked.body.data._id }] })

  t.equal(await next.stop(), 0, 'SIGTERM: exit 0')
  t.notOk(existsSync(lockFile), 'a graceful stop releases the lock')
})
