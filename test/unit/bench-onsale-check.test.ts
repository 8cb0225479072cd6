import t from 'tap'
import { paymentRefOf } from '../../bench/checkout-check.ts'
import { answerKey, answerProblems, newPhase, phaseStats, recordAnswer, soldOutProblems } from '../../bench/onsale-check.ts'

const sectionIds = Array.from({ length: 20 }, (_, i) => `section-${i}`)
const booking = (_id: string, status: string, paymentRef?: string) => JSON.stringify({ success: true, data: { _id, status, ...(paymentRef === undefined ? {} : { paymentRef }) } })
const soldOut = JSON.stringify({ success: false, error: { code: 'SOLD_OUT', message: 'sold out', remaining: 0 } })

t.test('a 409 is counted with its error code, other answers by status', async t => {
  t.equal(answerKey(409, soldOut), '409 SOLD_OUT')
  t.equal(answerKey(409, JSON.stringify({ success: false, error: { code: 'INVALID_STATE' } })), '409 INVALID_STATE')
  t.equal(answerKey(409, 'not json'), '409 (no JSON body)')
  t.equal(answerKey(201, 'whatever'), '201')
})

t.test('a held 201 queues its id for a confirm; a confirmed 201 does not', async t => {
  const phase = newPhase('event', sectionIds, 5)
  recordAnswer(phase, 'hold', 3, 201, booking('h1', 'held'), 0.1)
  recordAnswer(phase, 'book', 4, 201, booking('b1', 'confirmed'), 0.2)
  t.same(phase.holds, ['h1'])
  t.same(phase.createdBySection.slice(3, 5), [1, 1])
  t.same(phase.answers.hold, { 201: 1 })
  t.same(phase.problems, [])
})

t.test('a 201 whose booking is not in the state its kind makes is a problem', async t => {
  const phase = newPhase('event', sectionIds, 5)
  recordAnswer(phase, 'hold', 0, 201, booking('h1', 'confirmed'), 0)
  recordAnswer(phase, 'book', 0, 201, '{}', 0)
  t.equal(phase.problems.length, 2)
  t.same(phase.holds, [])
})

t.test('a section\'s first SOLD_OUT is timed, later ones keep that time', async t => {
  const phase = newPhase('event', sectionIds, 5)
  recordAnswer(phase, 'book', 5, 409, soldOut, 1.5)
  recordAnswer(phase, 'hold', 5, 409, soldOut, 2.5)
  t.same(phase.soldOutAt, { 5: 1.5 })
  t.same(phaseStats(phase).soldOutAtSeconds, { S5: 1.5 })
})

t.test('a confirm answered 200 with its paymentRef counts as confirmed, one without is a problem', async t => {
  const phase = newPhase('event', sectionIds, 5)
  recordAnswer(phase, 'confirm', -1, 200, booking('h1', 'confirmed', paymentRefOf('h1')), 0)
  recordAnswer(phase, 'confirm', -1, 200, booking('h2', 'confirmed', 'other'), 0)
  t.same([...phase.confirms.ids], ['h1'])
  t.equal(phase.confirms.problems.length, 1)
})

t.test('each kind may only get its own answers; 5xx are left to the common check', async t => {
  t.same(answerProblems({ read: { 200: 10 }, book: { 201: 5, '409 SOLD_OUT': 2 }, hold: { 201: 3, '409 SOLD_OUT': 1 }, confirm: { 200: 3 } }), [])
  t.same(answerProblems({ read: { 200: 1, 404: 2 }, book: { '409 LIMIT_EXCEEDED': 1, 503: 4 }, hold: {}, confirm: { '409 SOLD_OUT': 1 } }), [
    '2 read request(s) answered 404 (expected 200)',
    '1 book request(s) answered 409 LIMIT_EXCEEDED (expected 201 or 409 SOLD_OUT)',
    '1 confirm request(s) answered 409 SOLD_OUT (expected 200)'
  ])
})

t.test('a section that answered SOLD_OUT must have no seat left at the end', async t => {
  const phase = { sectionIds, soldOutAt: { 0: 1.2, 5: 1.4 } }
  t.same(soldOutProblems(phase, { 'section-0': 0, 'section-5': 0, 'section-1': 40 }), [])
  t.same(soldOutProblems(phase, { 'section-0': 2, 'section-5': 0 }), ['section S0 answered 409 SOLD_OUT, but has 2 seat(s) left at the end'])
  t.same(soldOutProblems(phase, { 'section-0': 0 }), ['section S5 answered 409 SOLD_OUT, but its remaining was not read'])
})
