/** One lock server, as readiness checks see it. */
export interface LockNode {
  /** host:port, never a password */
  readonly name: string
  /** resolves when the server answers */
  ping: () => Promise<unknown>
}

/** Locks had together: some of the keys asked for (never none), held until released. */
export interface HeldLocks {
  readonly keys: ReadonlySet<string>
  /** lets go of every key; not awaited: an expired or unreachable lock needs no release, its TTL frees it */
  release: () => void
}

/** The lock port: serializes writers of one section, within and across instances. */
export interface Locker {
  readonly kind: 'local' | 'redlock'
  /** the lock servers; none for the in-process lock */
  readonly nodes: readonly LockNode[]
  /** false while too few lock servers are known to answer: withLock then refuses at once ('unavailable') */
  available: () => boolean
  /** how soon to ask again for a lock another instance holds (0 in-process) */
  readonly retryMs: number
  /** how long a holder that let go with work left, while another instance asked for the lock, waits before asking again (0 in-process) */
  readonly handoverMs: number
  /**
   * Which of these keys (held here) another instance asked for in vain
   * lately: it gets them next. Answers in a few milliseconds whatever the
   * lock servers do; when they cannot tell, every key is taken as asked for.
   */
  askedElsewhere: (keys: readonly string[]) => Promise<ReadonlySet<string>>
  /**
   * Asks for the exclusive locks on `keys` together (one round trip to the
   * lock servers) and resolves with those had as soon as there is one; while
   * none can be had it asks again, for at most `waitMs` (then
   * LockUnavailableError('timeout')). Holding a lock is an optimisation, not
   * the guard: one that expires while held must not break correctness, the
   * database refuses oversell. Each key has one asker per instance (the
   * section batcher's).
   */
  lockSome: (keys: readonly string[], waitMs: number) => Promise<HeldLocks>
  /** Runs fn holding the lock on `key` (lockSome of one key), released when fn settles. */
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

/** withLock over a locker's lockSome: the one way both lockers run a function under one lock. */
export function withLockVia (lockSome: Locker['lockSome']): Locker['withLock'] {
  return async (key, waitMs, fn) => {
    const held = await lockSome([key], waitMs)
    try {
      return await fn()
    } finally {
      held.release()
    }
  }
}
