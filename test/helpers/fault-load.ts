/**
 * Bookings against a real server while a dependency misbehaves, and the
 * figures fault suites report: the answers while the fault lasted (counts by
 * status), the longest wait, and the time to recover once it is over.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { Test } from 'tap'
import type { ApiClient } from './http-client.ts'
import type { ServerProcess } from './server-process.ts'
import { textTable } from './text-table.ts'

/** One booking request: status 0 when no answer came (network error, client timeout). */
export interface Answer { status: number, code?: string, start: number, end: number }

export interface Target { eventId: string, sectionId: string }

let serial = 0

/** One booking of one seat for a new user, with its own Idempotency-Key. */
export async function bookOnce (client: ApiClient, { eventId, sectionId }: Target): Promise<Answer> {
  const userId = `fault-${process.pid}-${++serial}`
  const start = Date.now()
  try {
    const res = await client.request('POST', '/bookings', { eventId, sectionId, qty: 1, userId }, { 'idempotency-key': userId })
    return { status: res.status, code: res.status === 201 ? undefined : res.body.error?.code, start, end: Date.now() }
  } catch {
    return { status: 0, start, end: Date.now() }
  }
}

/** `concurrency` clients booking back to back until stopped; every answer is kept. */
export function backgroundLoad (client: ApiClient, target: Target, concurrency: number) {
  const answers: Answer[] = []
  let stopped = false
  const workers = Array.from({ length: concurrency }, async () => {
    while (!stopped) {
      const answer = await bookOnce(client, target)
      answers.push(answer)
      // a refusal comes back at once: pause so a refusing server is not flooded
      if (answer.status !== 201) await sleep(20)
    }
  })
  return {
    answers,
    async stop (): Promise<Answer[]> {
      stopped = true
      await Promise.all(workers)
      return answers
    }
  }
}

/** `count` bookings sent at once; resolves when every one was answered or `capMs` passed (then the rest are still out). */
export async function burst (client: ApiClient, target: Target, count: number, capMs: number): Promise<{ answers: Answer[], pending: number }> {
  const answers: Answer[] = []
  const all = Promise.all(Array.from({ length: count }, async () => { answers.push(await bookOnce(client, target)) }))
  let timer: NodeJS.Timeout | undefined
  await Promise.race([all, new Promise(resolve => { timer = setTimeout(resolve, capMs) })])
  clearTimeout(timer)
  return { answers: [...answers], pending: count - answers.length }
}

/** Books one seat after another from `since` until one is booked (201); the ms from `since` to that answer, or null if none within capMs. */
export async function timeToRecover (client: ApiClient, target: Target, since: number, capMs = 60_000): Promise<{ ms: number | null, answers: Answer[] }> {
  const answers: Answer[] = []
  while (Date.now() - since < capMs) {
    const answer = await bookOnce(client, target)
    answers.push(answer)
    if (answer.status === 201) return { ms: answer.end - since, answers }
    await sleep(20)
  }
  return { ms: null, answers }
}

/** Counts by status, as `503: 12, 201: 3`. */
export function countByStatus (answers: Answer[]): string {
  const counts = new Map<number, number>()
  for (const a of answers) counts.set(a.status, (counts.get(a.status) ?? 0) + 1)
  return [...counts].sort(([a], [b]) => a - b).map(([status, n]) => `${status === 0 ? 'no answer' : status}: ${n}`).join(', ')
}

export interface FaultFigures {
  fault: string
  /** answers to requests sent while the fault lasted */
  during: Answer[]
  /** ms from the fault's end to the first booking again */
  recoverMs: number | null
}

/** The report's table: one row per fault. */
export function figuresTable (rows: FaultFigures[]): string {
  return textTable([
    ['fault', 'answers while it lasted', 'longest wait (ms)', 'time to recover (ms)'],
    ...rows.map(r => [
      r.fault,
      countByStatus(r.during),
      String(Math.max(0, ...r.during.map(a => a.end - a.start))),
      r.recoverMs === null ? 'not recovered' : String(r.recoverMs)
    ])
  ])
}

export interface FaultRun {
  /** the background load's answers, before, during and after the fault */
  load: Answer[]
  /** the burst sent once the fault was in place */
  burst: Answer[]
  /** burst requests not answered before the fault was cleared */
  unansweredBeforeClear: number
  /** the bookings tried after the fault was cleared, until one was booked */
  recovery: Answer[]
  figures: FaultFigures
}

export interface FaultOptions {
  fault: string
  client: ApiClient
  target: Target
  /** puts the fault in place; resolves once it is */
  apply: () => Promise<void>
  /** ends it; resolves once the dependency is back (started, thawed) */
  clear: () => Promise<void>
  /** bookings sent at once while the fault lasts */
  burstSize?: number
  /** longest the fault is kept waiting for the burst's answers (a cap against a hang, far above the promised deadline) */
  capMs?: number
  /** the fault is the applying itself (sessions terminated one after another): it lasts from apply's start, not from its end */
  duringApply?: boolean
  /** after the burst, before clearing: e.g. readiness checks while the fault lasts */
  whileFaulty?: () => Promise<void>
}

/**
 * Background load throughout; the fault is applied, a burst of bookings is
 * sent and the fault lasts until every one of them was answered (or the cap
 * passed), then it is cleared and bookings are tried until one succeeds.
 */
export async function underFault (options: FaultOptions): Promise<FaultRun> {
  const { client, target, burstSize = 20, capMs = 20_000 } = options
  const load = backgroundLoad(client, target, 4)
  await sleep(500)
  const applying = Date.now()
  await options.apply()
  const from = options.duringApply === true ? applying : Date.now()
  const sent = await burst(client, target, burstSize, capMs)
  await options.whileFaulty?.()
  const to = Date.now()
  await options.clear()
  const cleared = Date.now()
  const recovered = await timeToRecover(client, target, cleared)
  const answers = await load.stop()
  const during = [...answers.filter(a => a.start >= from && a.start <= to), ...sent.answers]
  return {
    load: answers,
    burst: sent.answers,
    unansweredBeforeClear: sent.pending,
    recovery: recovered.answers,
    figures: { fault: options.fault, during, recoverMs: recovered.ms }
  }
}

/**
 * What every fault must leave, whatever the dependency: only 201, 409 and 503
 * answered, the instance up with no uncaught error, and bookings succeeding
 * again (`recovered` says after what). Returns how many were answered 201.
 */
export function assertSurvived (t: Test, server: ServerProcess, answers: Answer[], recoverMs: number | null, recovered: string): number {
  const statuses = [...new Set(answers.map(a => a.status))].sort()
  t.same(statuses.filter(s => ![201, 409, 503].includes(s)), [], `only 201, 409 and 503 answered (${statuses.join(', ')})`)
  t.equal(server.child.exitCode, null, 'the instance is still running')
  t.notOk(server.output.some(line => /uncaught|unhandled/i.test(line)), 'no uncaught error logged')
  t.not(recoverMs, null, `bookings succeed ${recovered}`)
  return answers.filter(a => a.status === 201).length
}
