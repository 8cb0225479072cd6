import t from 'tap'
import { cpuCost } from '../../bench/cpu.ts'
import type { LoadResult } from '../../bench/load.ts'
import { newPhase, phaseStats } from '../../bench/onsale-check.ts'
import { ONSALE_MIX } from '../../bench/onsale-mix.ts'
import { onsaleLine, tableNotes, type Ratios } from '../../bench/report.ts'
import { newRow, type Row } from '../../bench/scenarios.ts'

const run = (over: Partial<LoadResult> = {}): LoadResult => ({
  seconds: 10,
  responses: 5000,
  status: { 200: 3000, 201: 1800, 409: 200 },
  reqPerSec: 500,
  createdPerSec: 180,
  latencyMs: { p50: 20, p90: 40, p99: 75, max: 120, mean: 25 },
  errors: 0,
  timeouts: 0,
  drained: true,
  unanswered: 0,
  ...over
} as unknown as LoadResult)

function onsaleRow (): Row {
  const row = newRow('onsale', 'postgres', 'default', '')
  const phase = newPhase('event', Array.from({ length: 20 }, (_, i) => `s${i}`), 60)
  phase.answers = { read: { 200: 2100 }, book: { 201: 1200, '409 SOLD_OUT': 120 }, hold: { 201: 600, '409 SOLD_OUT': 80 }, confirm: { 200: 900 } }
  phase.soldOutAt = { 0: 2.04, 5: 2.3, 10: 2.5 }
  row.run = run()
  row.onsale = { mix: ONSALE_MIX, warmup: null, run: phaseStats(phase) }
  row.invariant = { ok: true, expected: { created: 1800 }, parts: [], problems: [] }
  return row
}

t.test('the onsale line gives req/s against health, each kind per second, p99 and the sections sold out', async t => {
  t.equal(onsaleLine(onsaleRow(), 0.25),
    'onsale on postgres, batch default: 500 req/s (25.0% of health), bookings+holds 180/s, confirms 90/s, reads 210/s, p99 75 ms; ' +
    'sections sold out: 3 of 20 (first 409 at 2.0 to 2.5 s, 60 seats each); invariant ok')
})

t.test('an onsale row without a run says so', async t => {
  const row = newRow('onsale', 'embedded', '1', '')
  row.error = 'boom'
  t.equal(onsaleLine(row, null), 'onsale on embedded, batch 1: n/a (did not complete)')
})

t.test('under the table: the onsale line, and a cpu line for each row that measured it', async t => {
  const onsale = onsaleRow()
  onsale.cpu = cpuCost(10, 11, 1800)
  const hot = newRow('hot', 'postgres', 'default', '')
  hot.run = run({ status: { 201: 20000 }, createdPerSec: 2000 })
  hot.cpu = cpuCost(1, 5, 20000)
  const health = newRow('health', 'postgres', '-', '')
  const ratios = new Map<Row, Ratios>([onsale, hot, health].map(r => [r, { vsHealth: 0.5, batchGain: null, vsNoAuth: null }]))
  const notes = tableNotes([health, hot, onsale], ratios)
  t.match(notes[0], /^onsale on postgres, batch default: 500 req\/s \(50\.0% of health\)/)
  t.same(notes.slice(1), [
    'cpu: hot / postgres / batch default: 0.20 CPU-ms per booking (service process only)',
    'cpu: onsale / postgres / batch default: 0.56 CPU-ms per booking or hold (service process only)'
  ])
})
