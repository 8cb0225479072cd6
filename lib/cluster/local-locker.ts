import { LockUnavailableError, withLockVia, type HeldLocks, type Locker } from './locker.ts'

/**
 * In-process locks: the lock when no Redis is configured (one instance).
 * A key released is handed to its first waiter, first come first served.
 */
export function localLocker (): Locker {
  // key present = held; the array holds the waiters' wake-ups, in order
  const waiters = new Map<string, Array<() => void>>()

  function release (key: string): void {
    const next = waiters.get(key)?.shift()
    if (next !== undefined) next() // hand over directly: the key stays held
    else waiters.delete(key)
  }

  function held (keys: string[]): HeldLocks {
    let released = false
    return {
      keys: new Set(keys),
      release: () => {
        if (released) return
        released = true
        for (const key of keys) release(key)
      }
    }
  }

  /** Takes the keys that are free. */
  function takeFree (keys: readonly string[]): string[] {
    const free = [...new Set(keys)].filter(key => !waiters.has(key))
    for (const key of free) waiters.set(key, [])
    return free
  }

  async function lockSome (keys: readonly string[], waitMs: number): Promise<HeldLocks> {
    const free = takeFree(keys)
    if (free.length > 0 || keys.length === 0) return held(free)
    // none free: the first of them let go is handed over, with any others free by then
    const first = await new Promise<string>((resolve, reject) => {
      const wakes = new Map<string, () => void>()
      const cancel = (): void => {
        for (const [key, wake] of wakes) {
          const queue = waiters.get(key)
          const i = queue?.indexOf(wake) ?? -1
          if (i !== -1) queue?.splice(i, 1)
        }
      }
      const timer = setTimeout(() => {
        cancel()
        reject(new LockUnavailableError('timeout', keys.join(', ')))
      }, Math.max(0, waitMs))
      for (const key of new Set(keys)) {
        const wake = (): void => {
          clearTimeout(timer)
          wakes.delete(key)
          cancel()
          resolve(key)
        }
        wakes.set(key, wake)
        waiters.get(key)?.push(wake)
      }
    })
    return held([first, ...takeFree(keys.filter(key => key !== first))])
  }

  return {
    kind: 'local',
    nodes: [],
    available: () => true,
    retryMs: 0,
    handoverMs: 0,
    // one instance: no one else asks
    askedElsewhere: async () => new Set(),
    lockSome,
    withLock: withLockVia(lockSome),
    close: async () => {}
  }
}
