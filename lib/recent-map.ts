/** A Map of at most `max` entries: setting a key makes it the newest, and past `max` the oldest is forgotten. */
export function createRecentMap<V> (max: number) {
  const entries = new Map<string, V>()
  return {
    get: (key: string): V | undefined => entries.get(key),
    set (key: string, value: V): void {
      entries.delete(key)
      entries.set(key, value)
      // a Map iterates in insertion order: the first key is the oldest
      if (entries.size > max) entries.delete(entries.keys().next().value as string)
    }
  }
}
