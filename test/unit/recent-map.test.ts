import t from 'tap'
import { createRecentMap } from '../../lib/support/recent-map.ts'

t.test('keeps the most recently set keys, at most max, and forgets the oldest', async t => {
  const map = createRecentMap<number>(10)
  for (let i = 0; i < 25; i++) map.set(`k${i}`, i)
  const kept = Array.from({ length: 25 }, (_, i) => map.get(`k${i}`)).filter(v => v !== undefined)
  t.ok(kept.length <= 10, `at most 10 kept (${kept.length})`)
  t.ok(kept.length >= 5, `at least half of max kept (${kept.length})`)
  t.same(kept, Array.from({ length: kept.length }, (_, i) => 25 - kept.length + i), 'the newest ones')
})

t.test('setting a key again makes it the newest and changes its value', async t => {
  const map = createRecentMap<string>(4)
  map.set('a', '1')
  map.set('b', '2')
  map.set('c', 'c')
  map.set('a', '3')
  for (const k of ['d', 'e']) map.set(k, k)
  t.equal(map.get('a'), '3', 'refreshed: outlives b')
  t.equal(map.get('b'), undefined, 'b, set before a was set again, is forgotten first')
})

t.test('null is a value, told apart from a missing key', async t => {
  const map = createRecentMap<number | null>(4)
  map.set('x', 5)
  map.set('y', 1)
  map.set('z', 2)
  map.set('x', null)
  t.equal(map.get('x'), null)
  t.equal(map.get('never'), undefined)
})

t.test('a deleted key is gone from both generations', async t => {
  const map = createRecentMap<number>(4)
  map.set('old', 1)
  map.set('b', 2)
  // 'old' is in the generation before now
  map.set('c', 3)
  map.set('new', 4)
  map.delete('old')
  map.delete('new')
  t.equal(map.get('old'), undefined)
  t.equal(map.get('new'), undefined)
  t.equal(map.get('c'), 3, 'the others stay')
})
