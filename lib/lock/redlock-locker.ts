import { setTimeout as sleep } from 'node:timers/promises'
import type { Redis } from 'ioredis'
import Redlock, { ExecutionError, ResourceLockedError } from 'redlock'
import { localLocker } from './local-locker.ts'
import { LockUnavailableError, type Locker } from './locker.ts'

export interface RedlockLockerOptions {
  /** lock lifetime: an instance that dies holding a lock blocks the section at most this long */
  ttlMs: number
  /** pause between attempts while another instance holds the lock */
  retryDelayMs?: number
}

/**
 * RedLock over one or several independent Redis servers (quorum N/2+1).
 * Requests of this instance first queue on an in-process lock, so each
 * instance has at most one contender per key polling Redis.
 */
export function redlockLocker (clients: Redis[], options: RedlockLockerOptions): Locker {
  const retryDelay = options.retryDelayMs ?? 5
  // retryCount 0: the deadline loop below does the waiting, so it can stop at the request's deadline
  const redlock = new Redlock(clients, { driftFactor: 0.01, retryCount: 0, retryDelay, retryJitter: retryDelay })
  // redlock reports every failed vote as an 'error' event too; failures are handled where they are thrown
  redlock.on('error', () => {})
  const local = localLocker()

  async function acquire (key: string, deadline: number) {
    for (;;) {
      try {
        return await redlock.acquire([key], options.ttlMs)
      } catch (err) {
        if (!(err instanceof ExecutionError)) throw err
        const pause = retryDelay + Math.random() * retryDelay
        if (Date.now() + pause >= deadline) throw new LockUnavailableError(await failureReason(err), key)
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
    async withLock (key, waitMs, fn) {
      const deadline = Date.now() + waitMs
      return await local.withLock(key, waitMs, async () => {
        const lock = await acquire(key, deadline)
        try {
          return await fn()
        } finally {
          // an expired or unreachable lock needs no release: the TTL frees it
          await lock.release().catch(() => {})
        }
      })
    },
    close: async () => {}
  }
}

/** 'timeout' when another holder had the lock, 'unavailable' when lock servers did not answer. */
async function failureReason (err: ExecutionError): Promise<'timeout' | 'unavailable'> {
  const stats = await Promise.all(err.attempts)
  const errors = stats.flatMap(s => [...s.votesAgainst.values()])
  return errors.length > 0 && errors.every(e => e instanceof ResourceLockedError) ? 'timeout' : 'unavailable'
}
