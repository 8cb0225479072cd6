/**
 * RedLock across "instances" (separate lockers with their own clients) on real
 * Redis servers: mutual exclusion, deadline, and the quorum with nodes down.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { LockUnavailableError, type Locker } from '../../lib/cluster/locker.ts'
import { redlockLocker } from '../../lib/cluster/redlock-locker.ts'
import { redisServerAvailable, throwawayRedis } from '../helpers/redis-server.ts'
import { missing, REDIS_URL } from '../helpers/services.ts'

const clientsFor = (t: Test, urls: string[]) => urls.map(url => {
  const client = new Redis(url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: true })
  client.on('error', () => {})
  t.teardown(() => client.disconnect())
  return client
})

async function instance (t: Test, urls: string[], ttlMs = 2000): Promise<Locker> {
  const clients = clientsFor(t, urls)
  await Promise.allSettled(clients.map(async c => await c.connect()))
  return redlockLocker(clients, { ttlMs })
}

/** Runs `runs` critical sections spread over the lockers; returns the most that ever overlapped. */
async function maxOverlap (lockers: Locker[], k: string, runs: number): Promise<number> {
  let inside = 0
  let most = 0
  await Promise.all(Array.from({ length: runs }, (_, i) => lockers[i % lockers.length].withLock(k, 5000, async () => {
    inside++
    most = Math.max(most, inside)
    await sleep(3)
    inside--
  })))
  return most
}

const key = () => `booking:test-${process.pid}-${Math.random().toString(16).slice(2)}:s`

async function failure (p: Promise<unknown>): Promise<LockUnavailableError> {
  const err = await p.then(() => undefined, (e: unknown) => e)
  if (!(err instanceof LockUnavailableError)) throw new Error(`expected LockUnavailableError, got ${String(err)}`)
  return err
}

t.test('one Redis: instances exclude each other', { skip: await missing('redis') }, async t => {
  const a = await instance(t, [REDIS_URL])
  const b = await instance(t, [REDIS_URL])
  t.equal(await maxOverlap([a, b], key(), 12), 1, 'never two holders at once across instances')
})

t.test('a holder elsewhere past the deadline: timeout, fn not run', { skip: await missing('redis') }, async t => {
  const a = await instance(t, [REDIS_URL])
  const b = await instance(t, [REDIS_URL])
  const k = key()
  let release!: () => void
  const held = a.withLock(k, 1000, async () => await new Promise<void>(resolve => { release = resolve }))
  await sleep(20)
  let ran = false
  const err = await failure(b.withLock(k, 60, async () => { ran = true }))
  t.equal(err.reason, 'timeout')
  t.equal(ran, false)
  release()
  await held
  t.equal(await b.withLock(k, 1000, async () => 'after'), 'after', 'released lock is free again')
})

t.test('locks asked for together: those free are had at once, one held elsewhere is left out', { skip: await missing('redis') }, async t => {
  const a = await instance(t, [REDIS_URL])
  const b = await instance(t, [REDIS_URL])
  const [k1, k2, k3] = [key(), key(), key()]
  const elsewhere = await a.lockSome([k2], 1000)
  const some = await b.lockSome([k1, k2, k3], 1000)
  t.same([...some.keys].sort(), [k1, k3].sort(), 'the two free keys, without waiting for the third')
  const err = await failure(a.lockSome([k1, k3], 60))
  t.equal(err.reason, 'timeout', 'the keys had are held: none can be had elsewhere')
  elsewhere.release()
  some.release()
  // the releases went out on other connections: ask until they have landed
  let had: string[] = []
  for (let attempt = 0; attempt < 50 && had.length < 3; attempt++) {
    const all = await a.lockSome([k1, k2, k3], 1000)
    had = [...all.keys]
    all.release()
    if (had.length < 3) await sleep(10)
  }
  t.same(had.sort(), [k1, k2, k3].sort(), 'all three once let go')
})

t.test('a key asked for in vain is marked for its holder, and unmarked once the asker has it', { skip: await missing('redis') }, async t => {
  const a = await instance(t, [REDIS_URL])
  const b = await instance(t, [REDIS_URL])
  const k = key()
  const other = key()
  const held = await a.lockSome([k, other], 1000)
  t.same([...await a.askedElsewhere([k, other])], [], 'nobody asked yet: the holder need not let go')
  t.equal((await failure(b.lockSome([k], 30))).reason, 'timeout')
  t.same([...await a.askedElsewhere([k, other])], [k], 'the key the other instance asked for, not the one it did not')
  held.release()
  const hers = await b.lockSome([k], 1000)
  t.same([...await b.askedElsewhere([k])], [], 'the asker has it: its mark is gone')
  hers.release()
})

t.test('lock servers that cannot tell who asked: every key is taken as asked for', async t => {
  const down = await instance(t, ['redis://127.0.0.1:1'])
  const k = key()
  t.same([...await down.askedElsewhere([k])], [k])
})

t.test('an instance that dies holding the lock blocks the section only for the TTL', { skip: await missing('redis') }, async t => {
  const k = key()
  const dead = clientsFor(t, [REDIS_URL])[0]
  await dead.connect()
  await dead.set(k, 'crashed-holder', 'PX', 300) // what a crashed holder leaves behind
  const b = await instance(t, [REDIS_URL])
  t.equal(await b.withLock(k, 3000, async () => 'got it'), 'got it')
})

t.test('three Redis servers: quorum survives one down, not two', { skip: await redisServerAvailable() }, async t => {
  const servers = await Promise.all([throwawayRedis(t), throwawayRedis(t), throwawayRedis(t)])
  const urls = servers.map(s => s.url)
  const a = await instance(t, urls)
  const b = await instance(t, urls)
  t.equal(await a.withLock(key(), 1000, async () => 'all up'), 'all up')

  await servers[0].kill()
  t.equal(await maxOverlap([a, b], key(), 6), 1, 'two of three still exclude')

  await servers[1].kill()
  t.equal(a.available(), true, 'not known down before an attempt found it so')
  const err = await failure(a.withLock(key(), 100, async () => 'no quorum'))
  t.equal(err.reason, 'unavailable', 'one of three is no quorum: unavailable, not a timeout')
  t.equal(a.available(), false, 'the quorum is now known down')
  // a wait far longer than the test: a refusal that polled would never come back in time for the assertions below
  const known = await failure(a.withLock(key(), 600_000, async () => 'no quorum'))
  t.equal(known.reason, 'unavailable', 'known down: refused at once, not after its wait')
  let ran = false
  await failure(a.withLock(key(), 600_000, async () => { ran = true }))
  t.notOk(ran, 'fn not run')

  await servers[0].start()
  let ok: string | undefined
  for (let i = 0; i < 100 && ok === undefined; i++) {
    ok = await a.withLock(key(), 200, async () => 'quorum back').catch(() => undefined)
    if (ok === undefined) await sleep(100)
  }
  t.equal(ok, 'quorum back', 'locks again once a quorum is back')
  t.equal(a.available(), true, 'the probe found the quorum back')
})
