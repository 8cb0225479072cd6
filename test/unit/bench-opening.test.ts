import t from 'tap'
import {
  markSent, newOpeningPhase, NOT_OPEN, openingProblems, openingStats, openingSummary, percentile, recordOpeningAnswer, salesStartFor
} from '../../bench/opening-check.ts'

const OPENS = Date.parse('2026-06-01T10:00:00.000Z')
const notOpen = JSON.stringify({ success: false, error: { code: 'SALE_NOT_OPEN', message: 'not yet', opensAt: '2026-06-01T10:00:00.000Z' } })
const booking = (createdAt: string, status = 'confirmed') => JSON.stringify({ success: true, data: { _id: 'b1', status, createdAt } })
const at = (ms: number, latencyMs = 2, sentMs = ms - latencyMs) => ({ sentMs, receivedMs: ms, latencyMs })

t.test('the sale opens after the warm-up and halfway through the run, on a whole millisecond', async t => {
  t.equal(salesStartFor(1_000, 2, 10), 8_000)
  t.equal(salesStartFor(1_000.4, 1, 3), 3_500)
})

t.test('answers are placed by when they were received against the opening', async t => {
  const phase = newOpeningPhase('event', OPENS, 1000)
  markSent(phase, OPENS - 3000)
  recordOpeningAnswer(phase, at(OPENS - 2000), 409, notOpen)
  recordOpeningAnswer(phase, at(OPENS - 500), 409, notOpen)
  recordOpeningAnswer(phase, at(OPENS + 5, 10), 201, booking('2026-06-01T10:00:00.003Z'))
  recordOpeningAnswer(phase, at(OPENS + 9), 201, booking('2026-06-01T10:00:00.001Z'))
  t.same(phase.answers, { before: { [NOT_OPEN]: 2 }, after: { 201: 2 } })
  t.equal(phase.nearAnswers, 1, 'one answer came within the last second')
  t.equal(phase.firstCreatedMs, OPENS + 5, 'the first 201 received')
  t.equal(phase.firstCreatedAtMs, OPENS + 1, 'the earliest createdAt, whatever the order of arrival')
  t.same(openingProblems(phase), [])
})

t.test('a not-open answer after the opening is right only for a request sent before it', async t => {
  const phase = newOpeningPhase('event', OPENS, 1000)
  markSent(phase, OPENS - 1000)
  recordOpeningAnswer(phase, at(OPENS - 100), 409, notOpen)
  recordOpeningAnswer(phase, at(OPENS + 3, 5), 409, notOpen)
  recordOpeningAnswer(phase, at(OPENS + 20, 5), 409, notOpen)
  recordOpeningAnswer(phase, at(OPENS + 30), 201, booking('2026-06-01T10:00:00.025Z'))
  t.equal(phase.notOpenInFlight, 1)
  t.equal(phase.notOpenSentAfter, 1)
  t.same(openingProblems(phase), [`1 request(s) sent after the opening answered ${NOT_OPEN}`])
})

t.test('a 201 before the opening, or created before salesStart, fails the check', async t => {
  const phase = newOpeningPhase('event', OPENS, 1000)
  markSent(phase, OPENS - 1000)
  recordOpeningAnswer(phase, at(OPENS - 10), 201, booking('2026-06-01T09:59:59.990Z'))
  recordOpeningAnswer(phase, at(OPENS + 10), 201, booking('2026-06-01T09:59:59.999Z'))
  t.equal(phase.createdBeforeOpening, 2)
  t.same(openingProblems(phase), [
    '1 answer(s) received before the opening were 201 (expected 409 SALE_NOT_OPEN)',
    '2 booking(s) answered 201 with a createdAt before salesStart',
    'a booking answered 201 was created at 2026-06-01T09:59:59.990Z, before salesStart 2026-06-01T10:00:00.000Z',
    'a booking answered 201 was created at 2026-06-01T09:59:59.999Z, before salesStart 2026-06-01T10:00:00.000Z'
  ])
})

t.test('other answers are errors; 5xx are left to the common check; a malformed 201 is a problem', async t => {
  const phase = newOpeningPhase('event', OPENS, 1000)
  markSent(phase, OPENS - 1000)
  recordOpeningAnswer(phase, at(OPENS - 10), 409, JSON.stringify({ success: false, error: { code: 'SOLD_OUT' } }))
  recordOpeningAnswer(phase, at(OPENS - 5), 503, '{}')
  recordOpeningAnswer(phase, at(OPENS + 10), 404, '{}')
  recordOpeningAnswer(phase, at(OPENS + 20), 201, booking('not a date'))
  t.same(openingProblems(phase), [
    '1 answer(s) received before the opening were 409 SOLD_OUT (expected 409 SALE_NOT_OPEN)',
    '1 answer(s) received after the opening were 404 (expected 201)',
    'a booking answered 201 with {"success":true,"data":{"_id":"b1","status":"confirmed","createdAt":"not a date"}}'
  ])
})

t.test('a phase that missed either side of the opening says so', async t => {
  const late = newOpeningPhase('event', OPENS, 1000)
  recordOpeningAnswer(late, at(OPENS + 10), 201, booking('2026-06-01T10:00:00.005Z'))
  t.same(openingProblems(late), ['no answer was received before the opening: the phase started too late to measure it'])
  const early = newOpeningPhase('event', OPENS, 1000)
  recordOpeningAnswer(early, at(OPENS - 10), 409, notOpen)
  t.same(openingProblems(early), ['no answer was received after the opening: the phase ended before it'])
  const closed = newOpeningPhase('event', OPENS, 1000)
  recordOpeningAnswer(closed, at(OPENS - 10), 409, notOpen)
  recordOpeningAnswer(closed, at(OPENS + 10, 2, OPENS - 1), 409, notOpen)
  t.same(openingProblems(closed), ['no booking was made after the opening (1 answers after it)'])
})

t.test('rates per window: before the opening (memory, then the last nearMs), and bookings after it', async t => {
  const phase = newOpeningPhase('event', OPENS, 1000)
  markSent(phase, OPENS - 5000)
  for (let i = 0; i < 400; i++) recordOpeningAnswer(phase, at(OPENS - 5000 + i * 10, 1), 409, notOpen) // 4 s, 100/s
  for (let i = 0; i < 50; i++) recordOpeningAnswer(phase, at(OPENS - 1000 + i * 20, 4), 409, notOpen) // the last 1 s, 50/s
  for (let i = 0; i < 30; i++) recordOpeningAnswer(phase, at(OPENS + 100 + i * 100, 8), 201, booking('2026-06-01T10:00:00.050Z'))
  const stats = openingStats(phase)
  t.equal(stats.before.seconds, 5)
  t.equal(stats.before.reqPerSec, 90)
  t.same([stats.before.memory.seconds, stats.before.memory.answers, stats.before.memory.reqPerSec], [4, 400, 100])
  t.same([stats.before.near.seconds, stats.before.near.answers, stats.before.near.reqPerSec], [1, 50, 50])
  t.equal(stats.after.seconds, 3)
  t.equal(stats.after.createdPerSec, 10)
  t.same(stats.before.latencyMs, { p50: 1, p99: 4 })
  t.equal(stats.firstCreatedMs, 100)
  t.equal(stats.firstCreatedAtMs, 50)
  t.equal(stats.salesStart, '2026-06-01T10:00:00.000Z')
  t.equal(openingSummary(stats, '50.0% of health'),
    'before the opening 90 req/s (50.0% of health; 100 req/s until 1.0 s before it, 50 req/s in those last 1.0 s), p99 4.0 ms; ' +
    'after it 10 bookings/s, p99 8.0 ms; first 201 +100 ms after salesStart (createdAt +50 ms)')
})

t.test('a warm-up ends before the opening: its windows end with its last answer', async t => {
  const phase = newOpeningPhase('event', OPENS, 1000)
  markSent(phase, OPENS - 6000)
  for (let i = 0; i < 200; i++) recordOpeningAnswer(phase, at(OPENS - 6000 + i * 10, 1), 409, notOpen) // 2 s, 100/s
  const stats = openingStats(phase)
  t.same([stats.before.seconds, stats.before.reqPerSec, stats.before.memory.seconds, stats.before.near.seconds], [1.99, 200 / 1.99, 1.99, 0])
  t.same([stats.after.seconds, stats.after.reqPerSec], [0, null])
  t.same(openingProblems(phase, { spansOpening: false }), [])
  t.same(openingProblems(phase), ['no answer was received after the opening: the phase ended before it'])
})

t.test('a pre-opening phase shorter than nearMs has no memory window', async t => {
  const phase = newOpeningPhase('event', OPENS, 1000)
  markSent(phase, OPENS - 500)
  recordOpeningAnswer(phase, at(OPENS - 400), 409, notOpen)
  recordOpeningAnswer(phase, at(OPENS + 100, 2, OPENS - 1), 409, notOpen)
  const stats = openingStats(phase)
  t.same([stats.before.seconds, stats.before.memory.seconds, stats.before.memory.reqPerSec, stats.before.near.seconds], [0.5, 0, null, 0.5])
  t.same([stats.after.seconds, stats.after.createdPerSec, stats.firstCreatedMs, stats.notOpenInFlight], [0.1, 0, null, 1])
  t.match(openingSummary(stats), /^before the opening 2 req\/s, p99 2\.0 ms; after it 0 bookings\/s, p99 2\.0 ms; first 201 n\/a/)
})

t.test('percentile is nearest-rank, to 0.1 ms', async t => {
  t.equal(percentile([], 99), null)
  t.equal(percentile([5], 50), 5)
  t.equal(percentile([3, 1, 2, 4], 50), 2)
  t.equal(percentile(Array.from({ length: 100 }, (_, i) => i + 1.04), 99), 99)
})
