/**
 * Sections this instance saw sold out, remembered for a while so a storm of
 * requests for them is answered without the lock or the database. Whatever
 * gives seats back forgets the section at once.
 */
export interface SoldOutMemory {
  has: (key: string) => boolean
  remember: (key: string) => void
  forget: (key: string) => void
}

export function createSoldOutMemory (ttlMs: number, clock: () => number): SoldOutMemory {
  const until = new Map<string, number>()
  return {
    has (key) {
      const expires = until.get(key)
      if (expires === undefined) return false
      if (expires > clock()) return true
      until.delete(key)
      return false
    },
    remember (key) {
      if (ttlMs > 0) until.set(key, clock() + ttlMs)
    },
    forget (key) {
      until.delete(key)
    }
  }
}
