import { setTimeout as sleep } from 'node:timers/promises'
import type { Redis } from 'ioredis'
import Redlock, { ExecutionError, ResourceLockedError, type Lock } from 'redlock'
import { localLocker } from './local-locker.ts'
import { LockUnavailableError, type Locker } from './locker.ts'

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
 * Requests of this instance first queue on an in-process lock, so each
 * instance has at most one contender per key polling Redis. Every attempt
 * ends by the request's deadline. An attempt that finds fewer than a quorum
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
  const local = localLocker()
  let quorumDown = false
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

  /** One attempt, settled by the deadline; a lock it gets later is let go at once (nobody waits for it any more). */
  async function attempt (key: string, deadline: number): Promise<Lock | null> {
    const pending = redlock.acquire([key], options.ttlMs)
    const lock = await byDeadline<Lock | null>(pending, deadline, () => null)
    if (lock === null) pending.then(async late => { await late.release() }).catch(() => {})
    return lock
  }

  async function acquire (key: string, deadline: number): Promise<Lock> {
    for (;;) {
      if (quorumDown) throw new LockUnavailableError('unavailable', key)
      try {
        const lock = await attempt(key, deadline)
        if (lock === null) throw new LockUnavailableError('timeout', key)
        return lock
      } catch (err) {
        if (!(err instanceof ExecutionError)) throw err
        if (await failureReason(err, deadline) === 'unavailable') {
          markDown()
          throw new LockUnavailableError('unavailable', key)
        }
        const pause = retryDelay + Math.random() * retryDelay
        if (Date.now() + pause >= deadline) throw new LockUnavailableError('timeout', key)
        await sleep(pause)
      }
    }
  }

  return {
    kind: 'redlock',
    // longer than a poller's pause (retryDelay plus jitter), so one that is waiting asks first
    handoverMs: 2 * retryDelay + 1,
    nodes: clients.map(client => ({
      name: `${client.options.host ?? '?'}:${client.options.port ?? '?'}`,
      ping: async () => await client.ping()
    })),
    available: () => !quorumDown,
    async withLock (key, waitMs, fn) {
      const deadline = Date.now() + waitMs
      if (quorumDown) throw new LockUnavailableError('unavailable', key)
      return await local.withLock(key, waitMs, async () => {
        const lock = await acquire(key, deadline)
        try {
          return await fn()
        } finally {
          // not awaited: fn's callers need not wait for the servers. Each server runs
          // commands in the order sent, so this instance's next attempt finds it released.
          // An expired or unreachable lock needs no release: the TTL frees it.
          lock.release().catch(() => {})
        }
      })
    },
    close: async () => {
      closed = true
      clearTimeout(probe)
    }
  }
}
