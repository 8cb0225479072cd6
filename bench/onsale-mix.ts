/**
 * What the onsale scenario sends, as pure functions: the mix of requests
 * (availability reads, bookings, holds, confirms of earlier holds), which
 * section and user a write goes to, and the section capacities that make a few
 * sections sell out during the measured run while the others do not.
 */
import { BIG_CAPACITY } from './options.ts'

export type OnsaleKind = 'read' | 'book' | 'hold' | 'confirm'
export const ONSALE_KINDS: readonly OnsaleKind[] = ['read', 'book', 'hold', 'confirm']

/** Requests of each kind per 20: 40% reads, 30% bookings, 15% holds, 15% confirms. */
export const ONSALE_MIX: Readonly<Record<OnsaleKind, number>> = { read: 8, book: 6, hold: 3, confirm: 3 }
export const ONSALE_SECTIONS = 20
/** Writes are spread over this many users (the service token books on their behalf). */
export const ONSALE_USERS = 10_000
/** Every SELL_OUT_EVERY-th section (0, 5, 10, 15) is sized to sell out during the run. */
export const SELL_OUT_EVERY = 5
export const SELL_OUT_SECTIONS = Math.ceil(ONSALE_SECTIONS / SELL_OUT_EVERY)
/** ... at about this share of the measured run at the warm-up's rate (the warm server runs faster: earlier, in practice). */
export const SELL_OUT_AT = 0.5
/** The warm-up's small sections: sold out at once, so the 409 path is warm too. */
export const WARMUP_SMALL_CAPACITY = 50

/**
 * The mix as one cycle, each kind spread evenly over it (smooth weighted
 * round-robin, as nginx balances upstreams): a burst of one kind would
 * measure that kind alone for a while.
 */
export function mixCycle (weights: Readonly<Record<OnsaleKind, number>>): OnsaleKind[] {
  const total = ONSALE_KINDS.reduce((sum, k) => sum + weights[k], 0)
  const current: Record<OnsaleKind, number> = { read: 0, book: 0, hold: 0, confirm: 0 }
  const cycle: OnsaleKind[] = []
  for (let i = 0; i < total; i++) {
    for (const k of ONSALE_KINDS) current[k] += weights[k]
    const best = ONSALE_KINDS.reduce((a, b) => current[b] > current[a] ? b : a)
    current[best] -= total
    cycle.push(best)
  }
  return cycle
}

/** The kind of request number n: the cycle's, but a confirm with no hold waiting for one is a read instead. */
export function pickKind (cycle: readonly OnsaleKind[], n: number, holdsWaiting: number): OnsaleKind {
  const kind = cycle[n % cycle.length]
  return kind === 'confirm' && holdsWaiting === 0 ? 'read' : kind
}

/** Whether section i is one of those sized to sell out. */
export function sellsOut (section: number): boolean {
  return section % SELL_OUT_EVERY === 0
}

/**
 * Seats one section took per second (201s of bookings and holds), over the
 * sections not sized to sell out: those stop taking seats once sold out.
 */
export function seatsPerSectionPerSecond (createdBySection: readonly number[], seconds: number): number {
  const open = createdBySection.filter((_, i) => !sellsOut(i))
  return open.length === 0 || seconds <= 0 ? 0 : open.reduce((a, b) => a + b, 0) / open.length / seconds
}

/** Seats of a section that sells out SELL_OUT_AT into a run of `seconds` at `perSecond` seats a second (at least 1). */
export function sellOutCapacity (perSecond: number, seconds: number): number {
  return Math.max(1, Math.round(perSecond * seconds * SELL_OUT_AT))
}

/** The event's capacities: `small` for the sections that sell out, BIG_CAPACITY (never sold out in a run) for the rest. */
export function onsaleCapacities (small: number): number[] {
  return Array.from({ length: ONSALE_SECTIONS }, (_, i) => sellsOut(i) ? small : BIG_CAPACITY)
}
