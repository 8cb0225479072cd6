/**
 * What a store adapter supplies: its driver's primitives, nothing decided.
 * lib/store/store.ts builds the Store on top (retries, error classification,
 * the section batch of lib/store/section-batch.ts), so every adapter decides alike.
 * The adapter's client belongs to whoever opened it, who also closes it.
 */
import type { StoredBooking } from '../domain/allocation.ts'
import type { BookingListQuery, Page, PageQuery, Section } from '../api/schemas.ts'
import type { EventFields, StoredEvent } from '../domain/sale-rules.ts'
import type { SectionsTx } from './section-batch.ts'
import type { SectionRef } from '../domain/section-ops.ts'
import type { DriverErrors } from './store-errors.ts'
import type { ChangeType, StoredChange } from '../domain/changes.ts'
import type { WebhookEndpoint, WebhookProgress } from '../domain/webhooks.ts'
import type { StoredEntry } from '../domain/waitlist.ts'

export type StoreKind = 'embedded' | 'postgres' | 'mongo'

/** A bookings list query, with what access control adds: only the bookings of one organizer's events. */
export type BookingFilter = BookingListQuery & { eventOwner?: string }

/** An events list query, with the drafts the viewer may see: none, those of one owner, or all (admins). */
export type EventFilter = PageQuery & { drafts: 'none' | 'all' | { owner: string } }

/**
 * What a change of an event does, decided on the event as it is stored (read
 * and written in one transaction): fields set (null clears one), sections
 * added. The decision may throw a DomainError: then nothing is written.
 */
export interface EventChange {
  fields: EventFields
  addSections: Section[]
}
export type DecideEventChange = (current: StoredEvent) => EventChange

/** An event as a change left it, and the type of the change its transaction recorded (null: it changed nothing). */
export interface ChangedEvent {
  event: StoredEvent
  recorded: ChangeType | null
}

/**
 * The reads, alike in the driver and the store, but for their bound: the
 * store is given the request's deadline (epoch ms), the driver a signal that
 * aborts then. No bound: the call waits as long as the database does.
 */
export interface StoreReads<Bound> {
  /** Newest first. */
  listEvents: (filter: EventFilter, bound?: Bound) => Promise<Page<StoredEvent>>
  /** The booking stored under an (already scoped) idempotency key, if any (no lock). */
  findByIdempotencyKey: (key: string, bound?: Bound) => Promise<StoredBooking | null>
  /** Newest first, filtered by the fields that are set. */
  listBookings: (filter: BookingFilter, bound?: Bound) => Promise<Page<StoredBooking>>
}

/** A read of the change feed: after a cursor (none: from the oldest kept), of some types, of one organizer's events. */
export interface ChangeQuery {
  after?: string
  limit: number
  types?: readonly ChangeType[]
  owner?: string
}

/** `nextCursor`: where to read on from, also when the page is empty. */
export interface ChangePage {
  items: StoredChange[]
  nextCursor: string
}

/** A page of an event's waiting-list entries: by section, then position, after a place in that order; one user's if given. */
export interface WaitlistQuery {
  eventId: string
  sectionId?: string
  userId?: string
  after?: { sectionId: string, position: number }
  limit: number
}

/** A new webhook endpoint: it gets the changes recorded from its making on. */
export type WebhookInput = Pick<WebhookEndpoint, '_id' | 'owner' | 'url' | 'types' | 'secret'>

/**
 * The outbox's reads and the webhooks' bookkeeping, alike in the driver and the
 * store but for their bound (as StoreReads). Records are written by the
 * writes they record (insertEvent, changeEvent, inSections), never here.
 */
export interface ChangeStore<Bound> {
  /**
   * In feed order: never a change passed over (also one whose transaction
   * commits after a later-numbered one's), never one twice. A cursor this
   * store did not make is an InvalidInputError naming `after`.
   */
  listChanges: (query: ChangeQuery, bound?: Bound) => Promise<ChangePage>
  /** Its cursor at the feed's head: it gets what is recorded from now on. */
  createWebhook: (input: WebhookInput, bound?: Bound) => Promise<WebhookEndpoint>
  /** An owner's endpoints (null: every endpoint), oldest first. */
  listWebhooks: (owner: string | null, bound?: Bound) => Promise<WebhookEndpoint[]>
  getWebhook: (id: string, bound?: Bound) => Promise<WebhookEndpoint | null>
  /** false when there was none */
  deleteWebhook: (id: string, bound?: Bound) => Promise<boolean>
  /**
   * Leases to `holder`, for leaseMs on the database's clock, up to `limit`
   * enabled endpoints due a try that nobody else holds (or whose holder's
   * lease ran out: it crashed), and renews those it holds already.
   */
  claimWebhooks: (holder: string, leaseMs: number, limit: number, bound?: Bound) => Promise<WebhookEndpoint[]>
  /** Saves a round's progress, only while `holder` holds the lease (then true), renewing it. */
  saveWebhook: (id: string, holder: string, progress: WebhookProgress, leaseMs: number, bound?: Bound) => Promise<boolean>
  /** Gives back every lease `holder` has (it stops). */
  releaseWebhooks: (holder: string, bound?: Bound) => Promise<void>
  /**
   * Deletes up to `limit` of the oldest changes recorded before `before` that
   * every enabled endpoint is past; the number deleted.
   */
  pruneChanges: (before: Date, limit: number, bound?: Bound) => Promise<number>
}

/**
 * A signal, where a method takes one, aborts at the request's deadline: the
 * adapter then stops what it can (pg drops the connection) and starts nothing
 * more; the store answers the caller at the deadline either way.
 */
export interface StoreDriver extends StoreReads<AbortSignal>, ChangeStore<AbortSignal> {
  readonly kind: StoreKind
  readonly errors: DriverErrors
  /** Creates tables/collections and indexes; idempotent, safe from several instances at once. */
  migrate: () => Promise<void>
  ping: (signal?: AbortSignal) => Promise<void>
  /** Atomic: the event with all its sections. */
  insertEvent: (event: StoredEvent, signal?: AbortSignal) => Promise<void>
  /**
   * Atomic: the event read (kept from other changes until written), `decide`
   * called on it, its change written, and every section of the event marked
   * changed (SQL: its version raised), so no batch decided on its rules before
   * writes after. A maxPerUser set anew counts each user's seats held and
   * confirmed in the event afresh. The event as changed; null when there is none.
   */
  changeEvent: (id: string, decide: DecideEventChange, signal?: AbortSignal) => Promise<ChangedEvent | null>
  /** Sections with holds past their expiresAt (on the database's clock), most overdue first. */
  dueSections: (limit: number, signal?: AbortSignal) => Promise<SectionRef[]>
  /** The bookings with these ids that exist, in any order (ids a store cannot hold are simply not found). */
  getBookings: (ids: readonly string[], signal?: AbortSignal) => Promise<StoredBooking[]>
  /** The events with these ids that exist, in any order (ids a store cannot hold are simply not found). */
  getEvents: (ids: readonly string[], signal?: AbortSignal) => Promise<StoredEvent[]>
  /** The waiting-list entries with these ids that exist, in any order. */
  getWaitEntries: (ids: readonly string[], signal?: AbortSignal) => Promise<StoredEntry[]>
  /** Entries are written only by section batches (inSections). */
  listWaitEntries: (query: WaitlistQuery, signal?: AbortSignal) => Promise<StoredEntry[]>
  /**
   * Runs fn atomically: its write takes effect when fn resolves, none of it
   * when it throws. MongoDB: one transaction. SQL: a read and one guarded
   * statement first, then, if that write was refused, one locking
   * transaction (`onRetry` is told: it is counted as a retry).
   */
  inSections: <T>(fn: (tx: SectionsTx) => Promise<T>, signal?: AbortSignal, onRetry?: () => void) => Promise<T>
}
