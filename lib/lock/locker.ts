/** One lock server, as readiness checks see it. */
export interface LockNode {
  /** host:port, never a password */
  readonly name: string
  /** resolves when the server answers */
  ping: () => Promise<unknown>
}

/** The lock port: serializes writers of one section, within and across instances. */
export interface Locker {
  readonly kind: 'local' | 'redlock'
  /** the lock servers; none for the in-process lock */
  readonly nodes: readonly LockNode[]
  /** false while too few lock servers are known to answer: withLock then refuses at once ('unavailable') */
  available: () => boolean
  /** how long a holder that let go with work left waits before asking again, so other instances' pollers get a turn (0 in-process) */
  readonly handoverMs: number
  /**
   * Runs fn while holding the exclusive lock on `key`, waiting at most `waitMs`
   * to get it (then LockUnavailableError, fn not run). The lock is released when
   * fn settles. Holding it is an optimisation, not the guard: a lock that
   * expires mid-fn must not break correctness, the database refuses oversell.
   */
  withLock: <T>(key: string, waitMs: number, fn: () => Promise<T>) => Promise<T>
  close: () => Promise<void>
}

export type LockFailureReason = 'timeout' | 'unavailable'

export class LockUnavailableError extends Error {
  readonly reason: LockFailureReason
  constructor (reason: LockFailureReason, key: string) {
    super(reason === 'timeout' ? `lock ${key} not acquired before the deadline` : `lock ${key}: no quorum of lock servers reachable`)
    this.name = 'LockUnavailableError'
    this.reason = reason
  }
}

/** `booking:<eventId>:<sectionId>`: the one lock every writer of a section takes. */
export function sectionLockKey (eventId: string, sectionId: string): string {
  return `booking:${eventId}:${sectionId}`
}
