import t from 'tap'
import { createSectionMemory, type KnownSection } from '../../lib/store/sql/section-memory.ts'

/** a section of event e1 */
const at = (sectionId: string) => ({ eventId: 'e1', sectionId })
const state = (remaining: number): KnownSection => ({ eventId: 'e1', remaining, capacity: 100, price: 10, sale: { status: 'published', salesStart: null, salesEnd: null }, owner: 'o', holdSeconds: null, maxPerUser: null, nextExpiry: null, waiting: 0, offerSeconds: null, version: 0 })

/** A memory on a clock the test moves. */
function memoryAt (freshMs: number, sharedMs = 1000) {
  let local = 1_000
  const memory = createSectionMemory(freshMs, sharedMs, () => local)
  return { memory, pass: (ms: number) => { local += ms } }
}

t.test('a section is recalled as remembered while fresh, then no longer', async t => {
  const { memory, pass } = memoryAt(50)
  memory.remember(new Map([['s1', state(7)], ['s2', state(0)]]), new Date('2026-01-01T00:00:00.000Z'))
  t.same(memory.recall(at('s1')), state(7))
  t.same(memory.recall(at('s2')), state(0))
  t.equal(memory.recall(at('s3')), undefined, 'never seen')
  pass(49)
  t.same(memory.recall(at('s1')), state(7), 'still fresh')
  pass(1)
  t.equal(memory.recall(at('s1')), undefined, 'freshMs after it was remembered: read it again')
})

t.test('a section is recalled only for its own event', async t => {
  const { memory } = memoryAt(50)
  memory.remember(new Map([['s1', state(7)]]), new Date(0))
  t.same(memory.recall(at('s1')), state(7))
  t.equal(memory.recall({ eventId: 'e2', sectionId: 's1' }), undefined, 'named with another event\'s id: read, not recalled')
})

t.test('remembering again replaces the state and starts its time again', async t => {
  const { memory, pass } = memoryAt(50)
  memory.remember(new Map([['s1', state(7)]]), new Date(0))
  pass(40)
  memory.remember(new Map([['s1', state(5)]]), new Date(40))
  pass(40)
  t.same(memory.recall(at('s1')), state(5))
})

t.test('the database clock is reckoned from its last reading while that is fresh', async t => {
  const { memory, pass } = memoryAt(50)
  t.equal(memory.databaseNow(), undefined, 'never read')
  memory.remember(new Map(), new Date('2026-01-01T00:00:00.000Z'))
  pass(30)
  t.equal(memory.databaseNow()?.toISOString(), '2026-01-01T00:00:00.030Z', 'the reading plus the time passed here since')
  pass(20)
  t.equal(memory.databaseNow(), undefined, 'too old a reading: read the clock again')
})

t.test('forgotten sections are read again', async t => {
  const { memory } = memoryAt(50)
  memory.remember(new Map([['s1', state(7)], ['s2', state(3)]]), new Date(0))
  memory.forget(['s1'])
  t.equal(memory.recall(at('s1')), undefined)
  t.same(memory.recall(at('s2')), state(3))
})

t.test('a section whose memory a write found stale is read, not recalled, for sharedMs', async t => {
  const { memory, pass } = memoryAt(50, 1000)
  memory.remember(new Map([['s1', state(7)], ['s2', state(3)]]), new Date(0))
  memory.refused(['s1'])
  t.equal(memory.recall(at('s1')), undefined, 'refused: forgotten')
  memory.remember(new Map([['s1', state(4)]]), new Date(10))
  t.equal(memory.recall(at('s1')), undefined, 'read again, still not recalled: another writer shares it')
  t.same(memory.recall(at('s2')), state(3), 'the others are recalled')
  pass(1000)
  memory.remember(new Map([['s1', state(2)]]), new Date(1010))
  t.same(memory.recall(at('s1')), state(2), 'sharedMs later it is recalled again')
})
