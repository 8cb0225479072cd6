/**
 * The onsale scenario's bookkeeping and its own checks, beside the section
 * invariant and the confirm check of bench/checkout-check.ts:
 * - each kind of request got only the answers it may get: reads and confirms
 *   200, bookings and holds 201 or 409 SOLD_OUT (5xx are reported for every row);
 * - every section that answered 409 SOLD_OUT has no seat left at the end
 *   (the bench asks for one seat at a time, and no seat comes back in a run).
 */
import { bookingOf, newConfirmLog, note, recordConfirm, type ConfirmLog } from './checkout-check.ts'
import { ONSALE_KINDS, ONSALE_SECTIONS, type OnsaleKind } from './onsale-mix.ts'

/** Answers per status; a 409 is keyed with its error code, e.g. `409 SOLD_OUT`. */
export type Answers = Record<string, number>

/** What one phase (warm-up or run) of the scenario sent and got, on its own event. */
export interface OnsalePhase {
  eventId: string
  sectionIds: string[]
  /** seats of the sections sized to sell out (the others have BIG_CAPACITY) */
  smallCapacity: number
  answers: Record<OnsaleKind, Answers>
  /** confirms due when no hold was waiting: sent as reads instead */
  confirmsAsReads: number
  /** 201s per section index (bookings and holds) */
  createdBySection: number[]
  /** section index -> seconds after the phase's first request when it first answered 409 SOLD_OUT */
  soldOutAt: Record<number, number>
  /** hold ids answered 201, in order; the confirms take them from nextConfirm on */
  holds: string[]
  nextConfirm: number
  confirms: ConfirmLog
  /** answers that were not what their kind should get, the first few */
  problems: string[]
}

export function newPhase (eventId: string, sectionIds: string[], smallCapacity: number): OnsalePhase {
  return {
    eventId,
    sectionIds,
    smallCapacity,
    answers: { read: {}, book: {}, hold: {}, confirm: {} },
    confirmsAsReads: 0,
    createdBySection: new Array<number>(sectionIds.length).fill(0),
    soldOutAt: {},
    holds: [],
    nextConfirm: 0,
    confirms: newConfirmLog(),
    problems: []
  }
}

const EXPECTED: Readonly<Record<OnsaleKind, readonly string[]>> = {
  read: ['200'],
  book: ['201', '409 SOLD_OUT'],
  hold: ['201', '409 SOLD_OUT'],
  confirm: ['200']
}

/** The key an answer is counted under: its status, and a 409's error code. */
export function answerKey (status: number, body: string): string {
  if (status !== 409) return String(status)
  try {
    return `409 ${(JSON.parse(body) as { error?: { code?: string } }).error?.code ?? '(no code)'}`
  } catch {
    return '409 (no JSON body)'
  }
}

/** Counts an answer; a 201 hold queues its id for a confirm; a section's first SOLD_OUT is timed. */
export function recordAnswer (phase: OnsalePhase, kind: OnsaleKind, section: number, status: number, body: string, seconds: number): void {
  const key = answerKey(status, body)
  phase.answers[kind][key] = (phase.answers[kind][key] ?? 0) + 1
  if (kind === 'confirm') recordConfirm(phase.confirms, status, body)
  if (kind !== 'book' && kind !== 'hold') return
  if (key === '409 SOLD_OUT' && phase.soldOutAt[section] === undefined) phase.soldOutAt[section] = seconds
  if (status !== 201) return
  phase.createdBySection[section]++
  const data = bookingOf(body)
  const status201 = kind === 'hold' ? 'held' : 'confirmed'
  if (data?._id === undefined || data.status !== status201) note(phase.problems, `a ${kind} answered 201 with ${body.slice(0, 200)}`)
  else if (kind === 'hold') phase.holds.push(data._id)
}

/** Answers a kind must not get, below 500 (5xx are counted against every row already). */
export function answerProblems (answers: Record<OnsaleKind, Answers>): string[] {
  const out: string[] = []
  for (const kind of ONSALE_KINDS) {
    for (const [key, n] of Object.entries(answers[kind])) {
      if (!EXPECTED[kind].includes(key) && Number.parseInt(key) < 500) out.push(`${n} ${kind} request(s) answered ${key} (expected ${EXPECTED[kind].join(' or ')})`)
    }
  }
  return out
}

/** Sections that answered 409 SOLD_OUT yet have a seat left at the end (`remaining`: section id -> remaining). */
export function soldOutProblems (phase: Pick<OnsalePhase, 'sectionIds' | 'soldOutAt'>, remaining: Record<string, number>): string[] {
  const out: string[] = []
  for (const index of Object.keys(phase.soldOutAt).map(Number)) {
    const id = phase.sectionIds[index]
    const left = remaining[id]
    if (left === undefined) out.push(`section S${index} answered 409 SOLD_OUT, but its remaining was not read`)
    else if (left >= 1) out.push(`section S${index} answered 409 SOLD_OUT, but has ${left} seat(s) left at the end`)
  }
  return out
}

/** The phase as recorded in the JSON: no id lists. */
export function phaseStats (phase: OnsalePhase) {
  return {
    eventId: phase.eventId,
    sections: ONSALE_SECTIONS,
    smallCapacity: phase.smallCapacity,
    answers: phase.answers,
    confirmsAsReads: phase.confirmsAsReads,
    holdsLeftUnconfirmed: phase.holds.length - phase.confirms.ids.size,
    createdBySection: phase.createdBySection,
    soldOutAtSeconds: Object.fromEntries(Object.entries(phase.soldOutAt).map(([i, s]) => [`S${i}`, Math.round(s * 100) / 100]))
  }
}
export type OnsalePhaseStats = ReturnType<typeof phaseStats>
