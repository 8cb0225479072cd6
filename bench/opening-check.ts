/**
 * The opening scenario's bookkeeping and its own checks, as pure functions.
 * Each answer is placed by when it was received against the sale's opening
 * (salesStart; the database decides by its clock, which on this machine is
 * the bench's own):
 * - before the opening only 409 SALE_NOT_OPEN is right (from the service's
 *   memory until about `nearMs` before it, from the database after that);
 * - after it 201, or 409 SALE_NOT_OPEN to a request sent before the opening
 *   (decided before it, answered after it); the same 409 to a request sent
 *   after the opening is wrong;
 * - no booking answered 201 may have a createdAt before salesStart.
 * 5xx are left to the check every row gets.
 */
import { note } from './checkout-check.ts'
import { answerKey, type Answers } from './onsale-check.ts'

/** The opening comes this far into the measured run: half of it before the opening, half after. */
export const OPENING_AT = 0.5

export const NOT_OPEN = '409 SALE_NOT_OPEN'

export type OpeningWindow = 'before' | 'after'

/** One answer's times: epoch ms (the wall clock the database's salesStart is on), and its latency from a monotonic clock. */
export interface AnswerTimes {
  sentMs: number
  receivedMs: number
  latencyMs: number
}

/** What one phase (warm-up or run) sent and got, on its own event. */
export interface OpeningPhase {
  eventId: string
  salesStartMs: number
  /** how long before the opening the database decides each request (the service's margin), ms */
  nearMs: number
  /** epoch ms of the phase's first request built, and of its last answer */
  startMs: number | null
  lastAnswerMs: number | null
  /** answers per status (a 409 with its error code), by when they were received */
  answers: Record<OpeningWindow, Answers>
  /** answers received before the opening, within nearMs of it */
  nearAnswers: number
  latencies: Record<OpeningWindow, number[]>
  /** 409 SALE_NOT_OPEN received after the opening: to requests sent before it (in flight across it), and sent after it (wrong) */
  notOpenInFlight: number
  notOpenSentAfter: number
  /** epoch ms of the first 201 received, and the earliest createdAt of a 201 */
  firstCreatedMs: number | null
  firstCreatedAtMs: number | null
  /** 201s whose createdAt is before salesStart */
  createdBeforeOpening: number
  /** the first few malformed or impossible answers */
  problems: string[]
}

export function newOpeningPhase (eventId: string, salesStartMs: number, nearMs: number): OpeningPhase {
  return {
    eventId,
    salesStartMs,
    nearMs,
    startMs: null,
    lastAnswerMs: null,
    answers: { before: {}, after: {} },
    nearAnswers: 0,
    latencies: { before: [], after: [] },
    notOpenInFlight: 0,
    notOpenSentAfter: 0,
    firstCreatedMs: null,
    firstCreatedAtMs: null,
    createdBeforeOpening: 0,
    problems: []
  }
}

/**
 * When an event made at `nowMs` opens its sale: after the warm-up (all of it
 * before the opening, so the memory's answers are warm as soldout's are) and
 * OPENING_AT of the measured run that follows it. Whole ms: the API keeps ms.
 */
export function salesStartFor (nowMs: number, warmupSeconds: number, durationSeconds: number): number {
  return Math.round(nowMs + (warmupSeconds + durationSeconds * OPENING_AT) * 1000)
}

/** A request was built to be sent at `sentMs`: the phase starts with its first. */
export function markSent (phase: OpeningPhase, sentMs: number): void {
  if (phase.startMs === null || sentMs < phase.startMs) phase.startMs = sentMs
}

function createdAtOf (body: string): { status?: string, createdAt?: string } | undefined {
  try {
    return (JSON.parse(body) as { data?: { status?: string, createdAt?: string } }).data
  } catch {
    return undefined
  }
}

const min = (a: number | null, b: number): number => a === null || b < a ? b : a
const iso = (ms: number): string => new Date(ms).toISOString()

/** Counts an answer in its window; times the first 201, and checks its booking against the opening. */
export function recordOpeningAnswer (phase: OpeningPhase, times: AnswerTimes, status: number, body: string): void {
  const window: OpeningWindow = times.receivedMs < phase.salesStartMs ? 'before' : 'after'
  const key = answerKey(status, body)
  phase.answers[window][key] = (phase.answers[window][key] ?? 0) + 1
  phase.latencies[window].push(times.latencyMs)
  if (phase.lastAnswerMs === null || times.receivedMs > phase.lastAnswerMs) phase.lastAnswerMs = times.receivedMs
  if (window === 'before' && times.receivedMs >= phase.salesStartMs - phase.nearMs) phase.nearAnswers++
  if (key === NOT_OPEN && window === 'after') {
    if (times.sentMs < phase.salesStartMs) phase.notOpenInFlight++
    else phase.notOpenSentAfter++
  }
  if (status !== 201) return
  phase.firstCreatedMs = min(phase.firstCreatedMs, times.receivedMs)
  const data = createdAtOf(body)
  const createdAtMs = data?.createdAt === undefined ? Number.NaN : Date.parse(data.createdAt)
  if (data?.status !== 'confirmed' || Number.isNaN(createdAtMs)) {
    note(phase.problems, `a booking answered 201 with ${body.slice(0, 200)}`)
    return
  }
  phase.firstCreatedAtMs = min(phase.firstCreatedAtMs, createdAtMs)
  if (createdAtMs < phase.salesStartMs) {
    phase.createdBeforeOpening++
    note(phase.problems, `a booking answered 201 was created at ${data.createdAt}, before salesStart ${iso(phase.salesStartMs)}`)
  }
}

/**
 * What the phase got that a correct service does not answer (5xx aside: every
 * row counts those). `spansOpening`: the phase must have answers on both sides
 * of the opening and a 201 after it (the measured run; the warm-up ends before it).
 */
export function openingProblems (phase: OpeningPhase, { spansOpening = true } = {}): string[] {
  const out: string[] = []
  for (const [key, n] of Object.entries(phase.answers.before)) {
    if (key !== NOT_OPEN && Number.parseInt(key) < 500) out.push(`${n} answer(s) received before the opening were ${key} (expected ${NOT_OPEN})`)
  }
  for (const [key, n] of Object.entries(phase.answers.after)) {
    if (key !== '201' && key !== NOT_OPEN && Number.parseInt(key) < 500) out.push(`${n} answer(s) received after the opening were ${key} (expected 201)`)
  }
  if (phase.notOpenSentAfter > 0) out.push(`${phase.notOpenSentAfter} request(s) sent after the opening answered ${NOT_OPEN}`)
  if (phase.createdBeforeOpening > 0) out.push(`${phase.createdBeforeOpening} booking(s) answered 201 with a createdAt before salesStart`)
  const before = total(phase.answers.before)
  const after = total(phase.answers.after)
  if (before === 0) out.push('no answer was received before the opening: the phase started too late to measure it')
  if (spansOpening && after > 0 && (phase.answers.after['201'] ?? 0) === 0) out.push(`no booking was made after the opening (${after} answers after it)`)
  if (spansOpening && after === 0 && before > 0) out.push('no answer was received after the opening: the phase ended before it')
  return [...out, ...phase.problems]
}

function total (answers: Answers): number {
  return Object.values(answers).reduce((a, b) => a + b, 0)
}

/** The nearest-rank percentile of the values (ms, to 0.1), null without any. */
export function percentile (values: readonly number[], p: number): number | null {
  if (values.length === 0) return null
  const sorted = [...values].sort((a, b) => a - b)
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(p / 100 * sorted.length)))
  return Math.round(sorted[rank - 1] * 10) / 10
}

const rate = (n: number, seconds: number): number | null => seconds > 0 ? n / seconds : null

/**
 * The phase as recorded in the JSON and reported: no per-answer lists; first-201 times in ms after
 * salesStart. Its windows run from its first request to the opening (or its last answer, if that
 * came first: the warm-up), then to its last answer; the one before splits at nearMs before the opening.
 */
export function openingStats (phase: OpeningPhase) {
  const start = phase.startMs ?? phase.salesStartMs
  const end = phase.lastAnswerMs ?? start
  const beforeEnd = Math.min(phase.salesStartMs, end)
  const nearFrom = phase.salesStartMs - phase.nearMs
  const beforeSeconds = Math.max(0, beforeEnd - start) / 1000
  const memorySeconds = Math.max(0, Math.min(beforeEnd, nearFrom) - start) / 1000
  const nearSeconds = Math.max(0, beforeEnd - Math.max(start, nearFrom)) / 1000
  const afterSeconds = Math.max(0, end - phase.salesStartMs) / 1000
  const before = total(phase.answers.before)
  const after = total(phase.answers.after)
  const created = phase.answers.after['201'] ?? 0
  const since = (ms: number | null): number | null => ms === null ? null : ms - phase.salesStartMs
  return {
    eventId: phase.eventId,
    salesStart: iso(phase.salesStartMs),
    before: {
      seconds: beforeSeconds,
      answers: phase.answers.before,
      reqPerSec: rate(before, beforeSeconds),
      /** until nearMs before the opening: the service's memory may answer */
      memory: { seconds: memorySeconds, answers: before - phase.nearAnswers, reqPerSec: rate(before - phase.nearAnswers, memorySeconds) },
      /** the last nearMs before it: the database decides each batch */
      near: { seconds: nearSeconds, answers: phase.nearAnswers, reqPerSec: rate(phase.nearAnswers, nearSeconds) },
      latencyMs: { p50: percentile(phase.latencies.before, 50), p99: percentile(phase.latencies.before, 99) }
    },
    after: {
      seconds: afterSeconds,
      answers: phase.answers.after,
      reqPerSec: rate(after, afterSeconds),
      createdPerSec: rate(created, afterSeconds),
      latencyMs: { p50: percentile(phase.latencies.after, 50), p99: percentile(phase.latencies.after, 99) }
    },
    notOpenInFlight: phase.notOpenInFlight,
    notOpenSentAfter: phase.notOpenSentAfter,
    /** the first 201 received, on the bench's clock, ms after salesStart */
    firstCreatedMs: since(phase.firstCreatedMs),
    /** the earliest createdAt of a 201 (the database's clock), ms after salesStart */
    firstCreatedAtMs: since(phase.firstCreatedAtMs),
    createdBeforeOpening: phase.createdBeforeOpening
  }
}
export type OpeningStats = ReturnType<typeof openingStats>

const fixed = (x: number | null, digits = 0): string => x === null ? 'n/a' : x.toFixed(digits)
const signed = (x: number | null): string => x === null ? 'n/a' : `${x >= 0 ? '+' : ''}${x.toFixed(0)} ms`

/**
 * `before the opening 15000 req/s (17000 req/s until 1.0 s before it, 9000 req/s in those last 1.0 s), p99 6 ms;
 * after it 7800 bookings/s, p99 21 ms; first 201 +4 ms after salesStart (createdAt +2 ms)`;
 * `share`, when given, follows the first rate in brackets (its share of health, say).
 */
export function openingSummary (stats: OpeningStats, share?: string): string {
  const { before, after } = stats
  const split = before.memory.seconds > 0
    ? `${fixed(before.memory.reqPerSec)} req/s until ${before.near.seconds.toFixed(1)} s before it, ${fixed(before.near.reqPerSec)} req/s in those last ${before.near.seconds.toFixed(1)} s`
    : ''
  const brackets = [share, split].filter(part => part !== undefined && part !== '').join('; ')
  return `before the opening ${fixed(before.reqPerSec)} req/s${brackets === '' ? '' : ` (${brackets})`}, p99 ${fixed(before.latencyMs.p99, 1)} ms; ` +
    `after it ${fixed(after.createdPerSec)} bookings/s, p99 ${fixed(after.latencyMs.p99, 1)} ms; ` +
    `first 201 ${signed(stats.firstCreatedMs)} after salesStart (createdAt ${signed(stats.firstCreatedAtMs)})`
}
