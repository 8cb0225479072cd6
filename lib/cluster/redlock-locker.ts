import { setTimeout as sleep } from 'node:timers/promises'
import type { Redis } from 'ioredis'
import Redlock, { ExecutionError, ResourceLockedError, type Lock } from 'redlock'
import { LockUnavailableError, withLockVia, type HeldLocks, type Locker } from './locker.ts'

export interface RedlockLockerOptions {
  /** lock lifetime: an instance that dies holding a lock blocks the section at most this long */
  ttlMs: number
  /** pause between attempts while another instance holds the lock */
  retryDelayMs?: number
  /** while the quorum is known down, how often the servers are asked whether it is back */
  probeMs?: number
  /** told when the quorum is found down and when it is back; `down` lists the nodes that did not answer, by index */
  onQuorum?: (state: { up: boolean, down: number[] }) => void
}

/** Longest a probe waits for a server's PONG. */
const PROBE_TIMEOUT_MS = 1000
/**
 * How long a key stays marked asked for after an instance last asked for it
 * in vain; one still waiting asks again every few milliseconds, one that gave
 * up stops, and its mark fades.
 */
const ASKED_MS = 200
/**
 * How long a holder that let go waits before asking again when another
 * instance asked meanwhile: far longer than the other's next ask, even on a
 * loaded machine; the other then holds it for its own turn anyway.
 */
const HANDOVER_MS = 50
/** Longest a holder waits to learn whether another instance asked (then it takes it as asked). */
const ASKED_READ_MS = 20

/** The mark an instance leaves on a lock's key when it asked for it in vain. */
const askedKey = (key: string): string => `lock-asked:${key}`

/** Settles by `deadline` (epoch ms): with the promise's value, or `late` if it has not settled by then. */
async function byDeadline<T> (promise: Promise<T>, deadline: number, late: () => T): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([promise, new Promise<T>(resolve => { timer = setTimeout(() => { resolve(late()) }, Math.max(0, deadline - Date.now())) })])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * RedLock over one or several independent Redis servers (quorum N/2+1).
 * The section batcher is each key's one asker per instance; the keys of a
 * batch are asked for together, and those had are used (a key another
 * instance holds is asked for again later), so instances share a crowd of
 * sections rather than wait on each other. Every attempt ends by the
 * request's deadline. An attempt that finds fewer than a quorum
 * of servers answering makes the quorum known down: until a probe finds it
 * back, every request is refused at once instead of polling until its deadline.
 */
export function redlockLocker (clients: Redis[], options: RedlockLockerOptions): Locker {
  const retryDelay = options.retryDelayMs ?? 5
  const probeMs = options.probeMs ?? 250
  const quorum = Math.floor(clients.length / 2) + 1
  // retryCount 0: the deadline loop below does the waiting, so it can stop at the request's deadline
  const redlock = new Redlock(clients, { driftFactor: 0.01, retryCount: 0, retryDelay, retryJitter: retryDelay })
  // redlock reports every failed vote as an 'error' event too; failures are handled where they are thrown
  redlock.on('error', () => {})
  let quorumDown = false
  /** keys this instance marked asked for: unmarked once it has them */
  const marked = new Set<string>()
  let probe: NodeJS.Timeout | undefined
  let closed = false

  /** Indexes of the servers that do not answer PING in time. */
  async function silentNodes (): Promise<number[]> {
    const answers = await Promise.all(clients.map(async client =>
      await byDeadline(client.ping().then(() => true, () => false), Date.now() + PROBE_TIMEOUT_MS, () => false)))
    return answers.flatMap((ok, node) => ok ? [] : [node])
  }

  function scheduleProbe (): void {
    if (closed) return
    probe = setTimeout(() => {
      void silentNodes().then(down => {
        if (clients.length - down.length >= quorum) {
          quorumDown = false
          options.onQuorum?.({ up: true, down })
        } else {
          scheduleProbe()
        }
      })
    }, probeMs)
    probe.unref()
  }

  function markDown (): void {
    if (quorumDown) return
    quorumDown = true
    void silentNodes().then(down => { options.onQuorum?.({ up: false, down }) })
    scheduleProbe()
  }

  /** 'timeout' when a quorum answered but another holder had the lock, 'unavailable' when too few servers answered. */
  async function failureReason (err: ExecutionError, deadline: number): Promise<'timeout' | 'unavailable'> {
    // the votes of servers that do not answer come in at their command timeout; no later than the deadline here
    const stats = await byDeadline(Promise.all(err.attempts), deadline, () => null)
    if (stats === null) return 'timeout'
    const failed = stats.flatMap(s => [...s.votesAgainst.values()]).filter(e => !(e instanceof ResourceLockedError)).length
    return clients.length - failed < quorum ? 'unavailable' : 'timeout'
  }

  /** One attempt on these keys, all or none; settled by the deadline; a lock it gets later is let go at once (nobody waits for it any more). */
  async function attempt (keys: string[], deadline: number): Promise<Lock | null> {
    const pending = redlock.acquire(keys, options.ttlMs)
    const lock = await byDeadline<Lock | null>(pending, deadline, () => null)
    if (lock === null) pending.then(async late => { await late.release() }).catch(() => {})
    return lock
  }

  /**
   * Asks for the keys: first all of them in one script per server (one round
   * trip, the usual case: nobody else holds any); if another holder has one,
   * each key on its own, at once. The keys had, by the lock that holds them;
   * none had: the first failure, for its reason.
   */
  async function attemptAll (keys: string[], deadline: number): Promise<{ had: Map<string, Lock>, failure?: ExecutionError }> {
    const had = new Map<string, Lock>()
    let failure: ExecutionError | undefined
    const tryKeys = async (some: string[]): Promise<void> => {
      try {
        const lock = await attempt(some, deadline)
        if (lock !== null) for (const key of some) had.set(key, lock)
      } catch (err) {
        if (!(err instanceof ExecutionError)) throw err
        failure ??= err
        // one key on its own refused: another instance holds it, and is told so when its turn ends
        if (some.length === 1) mark(some[0])
      }
    }
    await tryKeys(keys)
    if (had.size === 0 && keys.length > 1 && failure !== undefined && Date.now() < deadline) {
      failure = undefined
      await Promise.all(keys.map(async key => { await tryKeys([key]) }))
    }
    return { had, failure }
  }

  /** Not awaited: a mark that does not reach a server only costs this instance a turn. */
  function mark (key: string): void {
    marked.add(key)
    for (const client of clients) client.set(askedKey(key), '1', 'PX', ASKED_MS).catch(() => {})
  }

  function unmark (keys: Iterable<string>): void {
    const mine = [...keys].filter(key => marked.delete(key)).map(askedKey)
    if (mine.length > 0) for (const client of clients) client.del(...mine).catch(() => {})
  }

  async function askedElsewhere (keys: readonly string[]): Promise<ReadonlySet<string>> {
    const all = new Set(keys)
    if (keys.length === 0) return all
    const names = keys.map(askedKey)
    const read = Promise.all(clients.map(async client => await client.mget(...names).catch(() => null)))
    const answers = await byDeadline(read, Date.now() + ASKED_READ_MS, () => null)
    // no server answered in time: asked, as far as anyone can tell
    if (answers === null || answers.every(a => a === null)) return all
    return new Set(keys.filter((_, i) => answers.some(a => a !== null && a[i] !== null)))
  }

  async function lockSome (keys: readonly string[], waitMs: number): Promise<HeldLocks> {
    const deadline = Date.now() + waitMs
    const name = keys.join(', ')
    for (;;) {
      if (quorumDown) throw new LockUnavailableError('unavailable', name)
      const { had, failure } = await attemptAll([...new Set(keys)], deadline)
      if (had.size > 0) {
        unmark(had.keys())
        return {
          keys: new Set(had.keys()),
          // not awaited: the callers need not wait for the servers. Each server runs commands
          // in the order sent, so this instance's next attempt finds them released.
          release: () => { for (const lock of new Set(had.values())) lock.release().catch(() => {}) }
        }
      }
      if (failure === undefined) throw new LockUnavailableError('timeout', name)
      if (await failureReason(failure, deadline) === 'unavailable') {
        markDown()
        throw new LockUnavailableError('unavailable', name)
      }
      const pause = retryDelay + Math.random() * retryDelay
      if (Date.now() + pause >= deadline) throw new LockUnavailableError('timeout', name)
      await sleep(pause)
    }
  }

  return {
    kind: 'redlock',
    // longer than a poller's pause (retryDelay plus jitter)
    retryMs: 2 * retryDelay + 1,
    handoverMs: HANDOVER_MS,
    askedElsewhere,
    nodes: clients.map(client => ({
      name: `${client.options.host ?? '?'}:${client.options.port ?? '?'}`,
      ping: async () => await client.ping()
    })),
    available: () => !quorumDown,
    lockSome,
    withLock: withLockVia(lockSome),
    close: async () => {
      closed = true
      clearTimeout(probe)
    }
  }
}
