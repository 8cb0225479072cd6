/**
 * The store port, and the one way a store is built from an adapter's driver:
 * every adapter (PostgreSQL, embedded PGlite, MongoDB) supplies a StoreDriver
 * and passes the same contract suite (test/store/contract.ts).
 */
import { roundMoney, type StoredBooking } from '../domain/allocation.ts'
import { assertDatesInOrder, canonicalFields, withFields } from '../domain/sale-rules.ts'
import { newId } from '../domain/ids.ts'
import type { EventInput, Section, SectionInput } from '../api/schemas.ts'
import type { StoredEvent } from '../domain/sale-rules.ts'
import { runSectionsBatch, type SectionBatchResult, type SectionGroup } from './section-batch.ts'
import type { SectionRef } from '../domain/section-ops.ts'
import { createSharedReads } from './shared-reads.ts'
import type { ChangeStore, DecideEventChange, StoreDriver, StoreKind, StoreReads, WaitlistQuery } from './driver.ts'
import type { StoredEntry } from '../domain/waitlist.ts'
import { storeRunner, type StoreObserver } from './store-errors.ts'

export type { StoreKind }

/**
 * Every method but init takes an optional deadline (epoch ms): by then it has
 * answered, with StoreUnavailableError if the database had not (lib/support/deadline.ts).
 */
export interface Store extends StoreReads<number>, ChangeStore<number> {
  readonly kind: StoreKind
  /** Creates tables/collections and indexes; safe to run any number of times, from several instances at once. */
  init: () => Promise<void>
  /** Resolves when the database answers a trivial query. */
  ping: (deadline?: number) => Promise<void>

  /** Atomic: the event and all its sections exist, or nothing does. Owned by `ownerId` (an organizer's sub). */
  createEvent: (input: EventInput, ownerId: string, deadline?: number) => Promise<StoredEvent>
  /** Atomic: the change `decide` makes of the event as stored (lib/store/driver.ts); null when there is no such event. */
  changeEvent: (id: string, decide: DecideEventChange, deadline?: number) => Promise<StoredEvent | null>

  /**
   * Atomic, over one or several sections (one group each): every operation
   * is decided (lib/store/section-batch.ts) and applied with one write guarded by
   * each section's `remaining >= taken - returned` (on SQL stores also by it
   * being still what the batch read). Idempotency keys are unique in
   * the database, so a racing duplicate aborts and retries the transaction
   * instead of booking twice. One result per group, in order. Either every
   * result takes effect or none does; a StoreUnavailableError at the
   * deadline leaves it unknown which.
   */
  sectionsBatch: (groups: readonly SectionGroup[], deadline?: number) => Promise<SectionBatchResult[]>

  /** Sections with holds past their expiresAt (on the database's clock), most overdue first: the sweeper's work. */
  dueSections: (limit: number, deadline?: number) => Promise<SectionRef[]>

  /** One event by id, or null; the reads of one turn of the event loop share one query (lib/store/shared-reads.ts). */
  getEvent: (id: string, deadline?: number) => Promise<StoredEvent | null>
  /** One booking by id, or null; shared in the same way. */
  getBooking: (id: string, deadline?: number) => Promise<StoredBooking | null>
  /** One waiting-list entry by id, or null. */
  getWaitEntry: (id: string, deadline?: number) => Promise<StoredEntry | null>
  /** A page of an event's waiting list, by section and position. */
  listWaitEntries: (query: WaitlistQuery, deadline?: number) => Promise<StoredEntry[]>
}

/** A new section as every store saves it: a fresh id, its price in cents, every seat on sale. */
export function newSection (input: SectionInput): Section {
  return { _id: newId(), name: input.name, price: roundMoney(input.price), capacity: input.capacity, remaining: input.capacity, held: 0, sold: 0, waiting: 0 }
}

/** A new event as every store saves it: fresh ids, moments in the API's form, published unless a draft. */
export function newEvent (input: EventInput, owner: string): StoredEvent {
  const { sections, status, ...fields } = input
  const event = withFields({
    _id: newId(),
    name: input.name,
    createdAt: new Date().toISOString(),
    status: status ?? 'published',
    owner,
    sections: sections.map(newSection)
  }, canonicalFields(fields))
  assertDatesInOrder(event)
  return event
}

/** The store over a driver: transactions retried on conflicts, a lost database answered as StoreUnavailableError. */
export function createStore (driver: StoreDriver, observer?: StoreObserver): Store {
  const run = storeRunner(driver.errors, observer)
  const { read } = run
  const events = createSharedReads(driver.getEvents, read)
  const bookings = createSharedReads(driver.getBookings, read)
  return {
    kind: driver.kind,
    init: async () => { await run.transaction('migrate', async () => { await driver.migrate() }) },
    ping: async (deadline) => { await read(async signal => { await driver.ping(signal) }, deadline) },

    async createEvent (input, ownerId, deadline) {
      const event = newEvent(input, ownerId)
      await run.transaction('create_event', async signal => { await driver.insertEvent(event, signal) }, deadline)
      observer?.recorded?.(['event.created'])
      return event
    },
    async changeEvent (id, decide, deadline) {
      const changed = await run.transaction('change_event', async signal => await driver.changeEvent(id, decide, signal), deadline)
      if (changed !== null && changed.recorded !== null) observer?.recorded?.([changed.recorded])
      return changed?.event ?? null
    },
    getEvent: async (id, deadline) => await events.get(id, deadline),
    listEvents: async (query, deadline) => await read(async signal => await driver.listEvents(query, signal), deadline),

    async sectionsBatch (groups, deadline) {
      const results = await run.transaction('book', async signal =>
        await driver.inSections(async (tx) => await runSectionsBatch(tx, groups), signal, () => observer?.retry?.('book')), deadline)
      for (const { recorded } of results) if (recorded.length > 0) observer?.recorded?.(recorded)
      return results
    },
    dueSections: async (limit, deadline) => await read(async signal => await driver.dueSections(limit, signal), deadline),

    findByIdempotencyKey: async (key, deadline) => await read(async signal => await driver.findByIdempotencyKey(key, signal), deadline),
    getBooking: async (id, deadline) => await bookings.get(id, deadline),
    getWaitEntry: async (id, deadline) => (await read(async signal => await driver.getWaitEntries([id], signal), deadline))[0] ?? null,
    listWaitEntries: async (query, deadline) => await read(async signal => await driver.listWaitEntries(query, signal), deadline),
    listBookings: async (filter, deadline) => await read(async signal => await driver.listBookings(filter, signal), deadline),

    listChanges: async (query, deadline) => await read(async signal => await driver.listChanges(query, signal), deadline),
    createWebhook: async (input, deadline) => await run.transaction('create_webhook', async signal => await driver.createWebhook(input, signal), deadline),
    listWebhooks: async (owner, deadline) => await read(async signal => await driver.listWebhooks(owner, signal), deadline),
    getWebhook: async (id, deadline) => await read(async signal => await driver.getWebhook(id, signal), deadline),
    deleteWebhook: async (id, deadline) => await run.transaction('delete_webhook', async signal => await driver.deleteWebhook(id, signal), deadline),
    claimWebhooks: async (holder, leaseMs, limit, deadline) =>
      await run.transaction('claim_webhooks', async signal => await driver.claimWebhooks(holder, leaseMs, limit, signal), deadline),
    saveWebhook: async (id, holder, progress, leaseMs, deadline) =>
      await run.transaction('save_webhook', async signal => await driver.saveWebhook(id, holder, progress, leaseMs, signal), deadline),
    releaseWebhooks: async (holder, deadline) => { await run.transaction('release_webhooks', async signal => { await driver.releaseWebhooks(holder, signal) }, deadline) },
    pruneChanges: async (before, limit, deadline) => await run.transaction('prune_changes', async signal => await driver.pruneChanges(before, limit, signal), deadline)
  }
}
