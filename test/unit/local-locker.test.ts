import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { localLocker } from '../../lib/cluster/local-locker.ts'
import { LockUnavailableError } from '../../lib/cluster/locker.ts'

t.test('one holder per key at a time, first come first served', async t => {
  const locker = localLocker()
  const order: string[] = []
  let inside = 0
  let maxInside = 0
  const work = (name: string) => locker.withLock('k', 1000, async () => {
    inside++
    maxInside = Math.max(maxInside, inside)
    await sleep(5)
    order.push(name)
    inside--
  })
  await Promise.all(['a', 'b', 'c', 'd'].map(work))
  t.equal(maxInside, 1)
  t.same(order, ['a', 'b', 'c', 'd'])
})

t.test('different keys do not wait for each other', async t => {
  const locker = localLocker()
  let release!: () => void
  const held = locker.withLock('x', 1000, async () => await new Promise<void>(resolve => { release = resolve }))
  const other = await locker.withLock('y', 0, async () => 'ran')
  t.equal(other, 'ran')
  release()
  await held
})

t.test('a waiter gives up at its deadline with reason timeout, and the lock still works after', async t => {
  const locker = localLocker()
  let release!: () => void
  const held = locker.withLock('k', 1000, async () => await new Promise<void>(resolve => { release = resolve }))
  const err = await locker.withLock('k', 20, async () => 'never').catch((e: unknown) => e)
  t.ok(err instanceof LockUnavailableError, 'LockUnavailableError')
  t.equal((err as LockUnavailableError).reason, 'timeout')
  release()
  await held
  t.equal(await locker.withLock('k', 0, async () => 'free'), 'free')
})

t.test('a throwing holder releases the lock', async t => {
  const locker = localLocker()
  await t.rejects(locker.withLock('k', 100, async () => { throw new Error('boom') }), /boom/)
  t.equal(await locker.withLock('k', 0, async () => 'free'), 'free')
})
