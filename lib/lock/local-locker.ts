import { LockUnavailableError, type Locker } from './locker.ts'

/**
 * In-process FIFO lock per key: the lock when no Redis is configured (one
 * instance), and the first stage of the RedLock locker so that one instance
 * sends one contender per key to Redis, not one per request.
 */
export function localLocker (): Locker {
  // key present = held; the array holds the waiters, first come first served
  const waiters = new Map<string, Array<() => void>>()

  async function acquire (key: string, waitMs: number): Promise<void> {
    const queue = waiters.get(key)
    if (queue === undefined) {
      waiters.set(key, [])
      return
    }
    await new Promise<void>((resolve, reject) => {
      const wake = (): void => { clearTimeout(timer); resolve() }
      const timer = setTimeout(() => {
        const i = queue.indexOf(wake)
        if (i !== -1) queue.splice(i, 1)
        reject(new LockUnavailableError('timeout', key))
      }, Math.max(0, waitMs))
      queue.push(wake)
    })
  }

  function release (key: string): void {
    const queue = waiters.get(key)
    const next = queue?.shift()
    if (next !== undefined) next() // hand over directly: the key stays held
    else waiters.delete(key)
  }

  return {
    kind: 'local',
    nodes: [],
    available: () => true,
    handoverMs: 0,
    async withLock (key, waitMs, fn) {
      await acquire(key, waitMs)
      try {
        return await fn()
      } finally {
        release(key)
      }
    },
    close: async () => {}
  }
}
