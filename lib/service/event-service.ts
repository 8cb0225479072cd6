/**
 * Events: created, read and changed by the principal asking
 * (lib/domain/access.ts), their lifecycle and sale window decided by
 * lib/domain/sale-rules.ts. A change of the event itself is one transaction
 * of the store; a change of a section's seats or price goes through the
 * section's batch (lib/service/booking-service.ts), never beside it. Either
 * way, what any instance remembers of the sections ends before the change is
 * answered.
 */
import { assertMayCreateEvents, draftsSeenBy, mayManageEvent, maySeeEvent } from '../domain/access.ts'
import type { Principal } from '../domain/principal.ts'
import { CapacityBelowTakenError, ForbiddenError, InvalidInputError, InvalidStateError, NotFoundError } from '../domain/errors.ts'
import {
  MAX_SECTIONS, type Event, type EventInput, type EventPatch, type Page, type PageAsk, type Section, type SectionInput, type SectionPatch
} from '../api/schemas.ts'
import {
  assertDatesInOrder, canonicalFields, publicEvent, statusAfter, withFields, type EventFields, type StatusMove, type StoredEvent
} from '../domain/sale-rules.ts'
import { listQuery } from '../domain/list-cursor.ts'
import type { EventChange } from '../store/driver.ts'
import { newSection, type Store } from '../store/store.ts'
import type { BookingService } from './booking-service.ts'

export interface EventServiceOptions {
  store: Store
  bookings: Pick<BookingService, 'learnSections' | 'submit' | 'changed'>
  /** how long a request may take before the store's answer is given up on (ms) */
  answerWithinMs: number
  clock?: () => number
}

export function createEventService (options: EventServiceOptions) {
  const { store, bookings, answerWithinMs } = options
  const clock = options.clock ?? Date.now
  const deadline = (): number => Date.now() + answerWithinMs
  const answer = (event: StoredEvent): Event => publicEvent(event, clock())

  /** Throws unless the principal may manage the event: a draft it may not see is not found, another's event is forbidden. */
  function assertManages (actor: Principal, id: string, event: StoredEvent | null): asserts event is StoredEvent {
    if (event === null || !maySeeEvent(actor, event)) throw new NotFoundError('Event', id)
    if (!mayManageEvent(actor, event.owner)) throw new ForbiddenError('Only the event\'s organizer or an admin changes it')
  }

  /**
   * Changes the event as stored (who may, and what, decided on it inside the
   * store's transaction), then ends what every instance remembers of its sections.
   */
  async function change (actor: Principal, id: string, decide: (current: StoredEvent) => EventChange): Promise<StoredEvent> {
    const changed = await store.changeEvent(id, current => {
      assertManages(actor, id, current)
      return decide(current)
    }, deadline())
    if (changed === null) throw new NotFoundError('Event', id)
    await bookings.changed(changed.sections.map(s => ({ eventId: id, sectionId: s._id })))
    bookings.learnSections(id, changed.sections.map(s => s._id))
    return changed
  }

  return {
    /** Creates an event owned by the organizer (or admin) asking. */
    async create (actor: Principal, input: EventInput): Promise<Event> {
      assertMayCreateEvents(actor)
      return answer(await store.createEvent(input, actor.sub, deadline()))
    },

    /** One event; a draft only to who manages it (to anyone else it does not exist). */
    async get (actor: Principal, id: string): Promise<Event> {
      const event = await store.getEvent(id, deadline())
      if (event === null || !maySeeEvent(actor, event)) throw new NotFoundError('Event', id)
      bookings.learnSections(event._id, event.sections.map(s => s._id))
      return answer(event)
    },

    async list (actor: Principal, ask: PageAsk): Promise<Page<Event>> {
      const page = await store.listEvents({ ...listQuery(ask, 'events'), drafts: draftsSeenBy(actor) }, deadline())
      const now = clock()
      return { ...page, items: page.items.map(e => publicEvent(e, now)) }
    },

    /** Changes the event's own fields (null clears one); its dates must stay in order. */
    async update (actor: Principal, id: string, patch: EventPatch): Promise<Event> {
      const fields: EventFields = canonicalFields(patch)
      return answer(await change(actor, id, current => {
        assertDatesInOrder(withFields(current, fields))
        return { fields, addSections: [] }
      }))
    },

    /** publish, close or cancel; the same move again changes nothing. Cancelling releases every hold of the event. */
    async move (actor: Principal, id: string, move: StatusMove): Promise<Event> {
      let cancelled = false
      const changed = await change(actor, id, current => {
        const status = statusAfter(current.status, move)
        if (status === null) throw new InvalidStateError(id, current.status, `Event ${id} is ${current.status}: it cannot be ${move === 'cancel' ? 'cancelled' : `${move}d`}`)
        cancelled = status === 'cancelled'
        return { fields: { status }, addSections: [] }
      })
      if (cancelled) {
        // every section's batch releases its holds (a batch of its own, again on a repeated cancel: idempotent)
        await Promise.all(changed.sections.map(async s => await bookings.submit({ eventId: id, sectionId: s._id }, { kind: 'release_holds' })))
      }
      return answer(await store.getEvent(id, deadline()) ?? changed)
    },

    /** Adds a section, on sale with the event's rules at once. */
    async addSection (actor: Principal, id: string, input: SectionInput): Promise<Section> {
      const section = newSection(input)
      await change(actor, id, current => {
        if (current.sections.length >= MAX_SECTIONS) throw new InvalidInputError('sections', `An event has at most ${MAX_SECTIONS} sections`)
        return { fields: {}, addSections: [section] }
      })
      return section
    },

    /**
     * Changes a section's name, price (bookings made from now on) or
     * capacity (never below its seats held and sold), in its batch: decided
     * under its lock, between bookings, with the guarded write.
     */
    async editSection (actor: Principal, id: string, sectionId: string, patch: SectionPatch): Promise<Section> {
      const event = await store.getEvent(id, deadline())
      assertManages(actor, id, event)
      if (!event.sections.some(s => s._id === sectionId)) throw new NotFoundError('Section', `${sectionId} of event ${id}`)
      const result = await bookings.submit({ eventId: id, sectionId }, { kind: 'edit', change: patch, mayEdit: owner => mayManageEvent(actor, owner) })
      switch (result.kind) {
        case 'edited':
          break
        case 'capacity_below_taken':
          throw new CapacityBelowTakenError(result.minimum, patch.capacity ?? 0)
        case 'forbidden':
          throw new ForbiddenError('Only the event\'s organizer or an admin changes it')
        default:
          throw new NotFoundError('Section', `${sectionId} of event ${id}`)
      }
      const after = await store.getEvent(id, deadline())
      const section = after?.sections.find(s => s._id === sectionId)
      if (section === undefined) throw new NotFoundError('Section', `${sectionId} of event ${id}`)
      return section
    }
  }
}

export type EventService = ReturnType<typeof createEventService>
