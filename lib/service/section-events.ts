/**
 * The event of each section this instance has seen (a section never changes
 * event): with a booking's id naming its section (lib/domain/ids.ts), a confirm or a
 * cancel then goes to its section's batch without reading the booking first,
 * on whichever instance it lands. Bounded: the oldest are forgotten first.
 */
import { LRUCache } from 'lru-cache'

export function createSectionEvents (max: number) {
  const events = new LRUCache<string, string>({ max })
  return {
    eventOf: (sectionId: string): string | undefined => events.get(sectionId),
    /** learnt from the store's own answers only, never from what a client sent */
    learn (sectionId: string, eventId: string): void {
      // a hot section is learnt on every booking: a lookup costs less than a set
      if (events.get(sectionId) !== eventId) events.set(sectionId, eventId)
    }
  }
}
