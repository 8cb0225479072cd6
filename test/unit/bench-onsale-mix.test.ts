import t from 'tap'
import {
  mixCycle, ONSALE_KINDS, ONSALE_MIX, ONSALE_SECTIONS, onsaleCapacities, pickKind, seatsPerSectionPerSecond, SELL_OUT_AT, SELL_OUT_SECTIONS, sellOutCapacity, type OnsaleKind
} from '../../bench/onsale-mix.ts'
import { BIG_CAPACITY } from '../../bench/options.ts'

const tally = (kinds: OnsaleKind[]) => Object.fromEntries(ONSALE_KINDS.map(k => [k, kinds.filter(x => x === k).length]))

t.test('the cycle holds each kind as often as the mix says: 40% reads, 30% bookings, 15% holds, 15% confirms', async t => {
  const cycle = mixCycle(ONSALE_MIX)
  t.equal(cycle.length, 20)
  t.same(tally(cycle), { read: 8, book: 6, hold: 3, confirm: 3 })
})

t.test('the cycle spreads each kind: no kind twice in a row but reads, and a hold comes before the first confirm', async t => {
  const cycle = mixCycle(ONSALE_MIX)
  for (let i = 1; i < cycle.length; i++) {
    if (cycle[i] !== 'read') t.not(cycle[i], cycle[i - 1], `position ${i}: ${cycle.join(' ')}`)
  }
  t.ok(cycle.indexOf('hold') < cycle.indexOf('confirm'), cycle.join(' '))
})

t.test('the cycle of other weights keeps them exactly', async t => {
  t.same(tally(mixCycle({ read: 1, book: 0, hold: 0, confirm: 0 })), { read: 1, book: 0, hold: 0, confirm: 0 })
  t.same(tally(mixCycle({ read: 5, book: 3, hold: 1, confirm: 1 })), { read: 5, book: 3, hold: 1, confirm: 1 })
})

t.test('a confirm with no hold waiting goes out as a read; request n follows the cycle round and round', async t => {
  const cycle: OnsaleKind[] = ['hold', 'confirm', 'book']
  t.equal(pickKind(cycle, 1, 0), 'read')
  t.equal(pickKind(cycle, 1, 1), 'confirm')
  t.same([0, 1, 2, 3, 4, 5].map(n => pickKind(cycle, n, 5)), ['hold', 'confirm', 'book', 'hold', 'confirm', 'book'])
})

t.test('every fifth section is sized to sell out, the others never sell out in a run', async t => {
  const capacities = onsaleCapacities(30)
  t.equal(capacities.length, ONSALE_SECTIONS)
  t.same(capacities.flatMap((c, i) => c === 30 ? [i] : []), [0, 5, 10, 15])
  t.equal(SELL_OUT_SECTIONS, 4)
  t.ok(capacities.every(c => c === 30 || c === BIG_CAPACITY))
})

t.test('the rate per section counts only the sections not sized to sell out', async t => {
  // the small sections (0, 5, 10, 15) sold out at 2 seats; the other 16 took 10 each in 2 s
  const created = Array.from({ length: ONSALE_SECTIONS }, (_, i) => i % 5 === 0 ? 2 : 10)
  t.equal(seatsPerSectionPerSecond(created, 2), 5)
  t.equal(seatsPerSectionPerSecond(created, 0), 0, 'no time measured: no rate')
})

t.test('a sell-out capacity lasts SELL_OUT_AT of the run at that rate, and is at least one seat', async t => {
  t.equal(sellOutCapacity(100, 10), Math.round(100 * 10 * SELL_OUT_AT))
  t.equal(sellOutCapacity(0, 10), 1)
  t.equal(sellOutCapacity(0.01, 3), 1)
})
