/**
 * A batch of operations on one or several sections, decided together:
 * written once here, run by every store adapter through the few primitives
 * of `SectionsTx`. The batch reads its sections together (locking them, or
 * guarding its write by what it read), reads what it needs,
 * lib/domain/section-decision.ts decides each section's operations at one moment
 * (the database's clock), and everything is applied in one guarded write.
 */
import type { StoredBooking } from '../domain/allocation.ts'
import { RetryableConflict } from '../domain/errors.ts'
import { newBookingId, newId } from '../domain/ids.ts'
import { decideSection, nextExpiryAfter, releasesHolds } from '../domain/section-decision.ts'
import type { ExpiredHold, OpResult, SectionEffects, SectionOp, SectionRef, SectionState } from '../domain/section-ops.ts'
import { byText } from '../support/text-order.ts'
import { batchRecord, recordedTypes, type BatchRecord, type ChangeType } from '../domain/changes.ts'
import type { SaleRefusal } from '../domain/sale-rules.ts'
import { DEFAULT_OFFER_SECONDS, waitlistReadLimit, type EntryChange, type WaitlistRead } from '../domain/waitlist.ts'

export interface SectionBatchResult {
  /** one result per operation, in order */
  results: OpResult[]
  /** seats left once the batch committed; null when the event has no such section */
  remaining: number | null
  expired: ExpiredHold[]
  /** seats back on public sale: given back by the batch's expiries, releases and cancellations (or a capacity raised), not offered to the waiting list */
  returned: number
  /** no later than the earliest expiresAt of the section's holds after the batch; null when it has none */
  nextExpiry: Date | null
  /** the batch's moment, on the database's clock */
  at: Date
  /** why the section's sale took no new booking at that moment; null: it took them (or no such section) */
  refusal: SaleRefusal | null
  /** the types of the changes the batch recorded for the section */
  recorded: ChangeType[]
  /** the section's waiting-list entries the batch moved (offered, served, skipped, left), and how many joined */
  waitlist: { changes: EntryChange[], joined: number }
}

/** One section's operations in a batch. */
export interface SectionGroup extends SectionRef {
  ops: readonly SectionOp[]
  /** a waiting-list offer's length when the event sets none (WAITLIST_OFFER_SECONDS) */
  offerDefaultMs?: number
}

/** What a batch writes to one section, and records of it in the outbox (the same write). */
export interface SectionWrite extends SectionRef {
  /** the event's organizer ('' when none): its records are its */
  owner: string
  effects: SectionEffects
  record: BatchRecord
}

/** Seats each user holds plus has confirmed in an event, by eventId, then userId. */
export type UserSeats = Map<string, Map<string, number>>

/**
 * A section a batch takes: `seats` its bookings and holds ask for in all;
 * `sweeps` when it expires due holds and nothing else may make it write, or
 * edits the section or releases its holds (then it is read afresh).
 * An adapter that remembers sections may decide one from memory only where
 * every decision is a guarded write: no sweep, and seats enough for every ask.
 */
export interface SectionAsk extends SectionRef {
  seats: number
  sweeps: boolean
}

/**
 * The primitives a store adapter supplies, inside one transaction, or (SQL)
 * as statements of their own whose reads the guarded write proves still true.
 */
export interface SectionsTx {
  /**
   * Locks these sections, in this order (by sectionId: the order every writer
   * keeps, so two batches cannot deadlock), keeping other writers off them
   * until the transaction ends; reads each with its event's rules, and the
   * bookings with these ids (every writer of a booking takes its section
   * first). A section missing, or not of its event, is absent from the map.
   * The bookings may be read as they were just before the locks were had:
   * each change is guarded by its `from`, so a stale read costs a rerun,
   * never a wrong write. `now` is the database's clock once the locks are had.
   * Unlocked (SQL's first try), the same read without the locks: the write is
   * then also guarded by each section's remaining being still as read here.
   * There, when every booking named was `seen` (read after its request came,
   * to find its section), those stand for the read of them: each change is
   * guarded by its `from` all the same; so may a hold the adapter wrote and has
   * not changed since (every decision on a held booking is such a change, or a
   * refusal on fields no booking changes); and a section it remembers from its
   * last batches may stand for a read of it (see SectionAsk), proven the same way.
   */
  lock: (sections: readonly SectionAsk[], bookingIds: readonly string[], seen: ReadonlyMap<string, StoredBooking>) =>
  Promise<{ sections: Map<string, SectionState>, bookings: StoredBooking[], now: Date }>
  /** The section's held bookings whose expiresAt <= now; and the earliest expiresAt after now of its other holds. */
  dueHolds: (section: SectionRef, now: Date) => Promise<{ due: StoredBooking[], next: Date | null }>
  /** Bookings stored under these idempotency keys. */
  findKeys: (keys: string[]) => Promise<StoredBooking[]>
  /**
   * The section's waiting list, as far as the batch needs it: its first
   * `limit` waiting entries of qty up to `seats` (none when `seats` is 0),
   * in position order; the entries with these ids; those of these users
   * still waiting or offered; the highest position given. Not locked: each
   * entry's change is guarded by its `from`, a join by the section's row.
   */
  waitlist: (section: SectionRef, ask: { seats: number, limit: number, ids: string[], userIds: string[] }) => Promise<WaitlistRead>
  /** Seats these users hold plus have confirmed in these events, their rows locked in (eventId, userId) order, as given. */
  lockUserSeats: (users: ReadonlyArray<{ eventId: string, userIds: string[] }>) => Promise<UserSeats>
  /**
   * Applies every section's effects at once, guarded by the database: refused
   * (null, or a retryable error that leaves nothing written) when a section's
   * remaining would fall below zero (or, unlocked, is no longer as read), a change finds
   * its booking no longer in `from` (or a hold to confirm past its
   * expiresAt), or a user's seats would pass the event's maxPerUser. The
   * writes' users' seats are applied in the writes' order. Returns each
   * section's remaining after, by sectionId.
   */
  apply: (writes: readonly SectionWrite[]) => Promise<Map<string, number> | null>
}

const NOT_FOUND: OpResult = { kind: 'not_found' }
const NO_MOVES: SectionBatchResult['waitlist'] = { changes: [], joined: 0 }

type WaitlistAsk = Parameters<SectionsTx['waitlist']>[1]

/**
 * What a section's batch reads of its waiting list; null: nothing. Waiting
 * entries when some wait and seats may be there once the batch's returns are
 * decided (at most these: every seat read or given back, and any capacity
 * raised); the entries its leaves name; its joining users' entries and the
 * list's last position.
 */
function waitlistAsk (group: SectionGroup, section: SectionState, bookings: readonly StoredBooking[]): WaitlistAsk | null {
  const ids: string[] = []
  const userIds: string[] = []
  let raised = 0
  for (const op of group.ops) {
    if (op.kind === 'leave') ids.push(op.entryId)
    if (op.kind === 'join') userIds.push(op.userId)
    if (op.kind === 'edit' && op.change.capacity !== undefined) raised = Math.max(raised, op.change.capacity - section.capacity)
  }
  // nobody waits (nearly every batch): only what the batch names is read
  const seats = section.waiting === 0
    ? 0
    : section.remaining + raised + bookings.reduce((sum, b) => b.status === 'held' || b.status === 'confirmed' ? sum + b.qty : sum, 0)
  if (seats === 0 && ids.length === 0 && userIds.length === 0) return null
  return { seats, limit: waitlistReadLimit(seats), ids, userIds }
}
/** Past every hold's end: dueHolds given it reads all the section's holds. */
const EVERY_HOLD = new Date(8.64e15)


const bySectionId = (a: SectionRef, b: SectionRef): number => byText(a.sectionId, b.sectionId)

/**
 * Runs one batch inside the adapter's transaction: one result per group, in
 * the groups' order (one group per section). Throws RetryableConflict if the
 * guard refused.
 */
export async function runSectionsBatch (tx: SectionsTx, groups: readonly SectionGroup[]): Promise<SectionBatchResult[]> {
  const order = [...groups].sort(bySectionId)
  if (order.some((g, i) => i > 0 && order[i - 1].sectionId === g.sectionId)) throw new Error('a batch has one group per section')
  const named = order.flatMap(g => g.ops.flatMap(op => op.kind === 'cancel' || op.kind === 'confirm' ? [op] : []))
  // an offered entry leaving releases its hold: read with the others
  const offerHolds = order.flatMap(g => g.ops.flatMap(op => op.kind === 'leave' && op.bookingId !== undefined ? [op.bookingId] : []))
  const ids = [...new Set([...named.map(op => op.bookingId), ...offerHolds])]
  // each booking named once, as read after its own request came: then no answer is older than its request
  const seen = new Map(ids.length === named.length ? named.flatMap(op => op.seen === undefined ? [] : [[op.bookingId, op.seen] as const]) : [])
  const asks = order.map(g => ({
    eventId: g.eventId,
    sectionId: g.sectionId,
    seats: g.ops.reduce((sum, op) => op.kind === 'book' ? sum + op.request.qty : sum, 0),
    sweeps: g.ops.some(op => op.kind === 'expire' || op.kind === 'edit' || op.kind === 'release_holds')
  }))
  const { sections, bookings, now } = await tx.lock(asks, ids, seen)

  // one after the other, in the lock order every writer keeps: sections, their bookings, then users
  // (and a MongoDB session runs one operation at a time)
  const found = order.flatMap(group => {
    const section = sections.get(group.sectionId)
    return section === undefined ? [] : [{ group, section: { ...section, now } }]
  })
  const due = new Map<string, { due: StoredBooking[], next: Date | null }>()
  for (const { group, section } of found) {
    // a cancelled event's holds are all released: every one is read, as if all were due
    if (releasesHolds(section, group.ops)) due.set(group.sectionId, await tx.dueHolds(group, EVERY_HOLD))
    else if (section.nextExpiry !== null && section.nextExpiry <= now) due.set(group.sectionId, await tx.dueHolds(group, now))
  }
  const keys = [...new Set(order.flatMap(g => g.ops.flatMap(op => op.kind === 'book' && op.request.idempotencyKey !== undefined ? [op.request.idempotencyKey] : [])))]
  // a key's booking made earlier in this batch (another section) is replayed as a stored one would be
  const existing = new Map((keys.length === 0 ? [] : await tx.findKeys(keys)).map(b => [b.idempotencyKey as string, b]))
  const ofSection = (sectionId: string): StoredBooking[] => [...(due.get(sectionId)?.due ?? []), ...bookings.filter(b => b.sectionId === sectionId)]

  // the waiting list, where the batch may offer seats to it or names it
  const waitlists = new Map<string, { read: WaitlistRead, ask: WaitlistAsk }>()
  for (const { group, section } of found) {
    const ask = waitlistAsk(group, section, ofSection(group.sectionId))
    if (ask !== null) waitlists.set(group.sectionId, { read: await tx.waitlist(group, ask), ask })
  }

  const users = new Map<string, Set<string>>()
  for (const { group, section } of found) {
    if (section.maxPerUser === null) continue
    const ids = users.get(group.eventId) ?? new Set<string>()
    for (const b of ofSection(group.sectionId)) ids.add(b.userId)
    for (const op of group.ops) {
      if (op.kind === 'book') ids.add(op.request.userId)
      if (op.kind === 'join') ids.add(op.userId)
    }
    for (const e of waitlists.get(group.sectionId)?.read.waiting ?? []) ids.add(e.userId)
    if (ids.size > 0) users.set(group.eventId, ids)
  }
  const seats: UserSeats = users.size === 0
    ? new Map()
    : await tx.lockUserSeats([...users].sort(([a], [b]) => byText(a, b)).map(([eventId, ids]) => ({ eventId, userIds: [...ids].sort(byText) })))

  // each section decided in turn: users' seats and keys carried from one section to the next
  const decided = new Map<string, {
    results: OpResult[], expired: ExpiredHold[], returned: number, nextExpiry: Date | null, section: SectionState, refusal: SaleRefusal | null, recorded: ChangeType[]
    waitlist: SectionBatchResult['waitlist']
  }>()
  const writes: SectionWrite[] = []
  for (const { group, section } of found) {
    const dueRead = due.get(group.sectionId)
    const userSeats = seats.get(group.eventId) ?? new Map<string, number>()
    const decide = (waitlist: WaitlistRead | null): ReturnType<typeof decideSection> => decideSection({
      ref: group,
      section,
      ops: group.ops,
      existing,
      bookings: new Map(ofSection(group.sectionId).map(b => [b._id, b])),
      userSeats,
      nextExpiry: dueRead === undefined ? { replace: false, at: null } : { replace: true, at: dueRead.next },
      waitlist,
      offerDefaultMs: group.offerDefaultMs ?? DEFAULT_OFFER_SECONDS * 1000,
      newId: () => newBookingId(group.sectionId),
      newEntryId: newId
    })
    let listed = waitlists.get(group.sectionId)
    let decision = decide(listed?.read ?? null)
    // more entries were passed over (or skipped) than read: read further, decide again (pure: nothing was written)
    while (decision.readMore && listed !== undefined) {
      const ask = { ...listed.ask, limit: listed.ask.limit * 4 }
      listed = { read: await tx.waitlist(group, ask), ask }
      const known = users.get(group.eventId) ?? new Set<string>()
      const more = [...new Set(listed.read.waiting.map(e => e.userId).filter(u => !known.has(u)))].sort(byText)
      if (section.maxPerUser !== null && more.length > 0) {
        // out of the usual order, and rare (a long list passed over): a deadlock it meets is detected and run again
        const extra = await tx.lockUserSeats([{ eventId: group.eventId, userIds: more }])
        for (const [userId, n] of extra.get(group.eventId) ?? []) userSeats.set(userId, n)
        for (const userId of more) known.add(userId)
        users.set(group.eventId, known)
      }
      decision = decide(listed.read)
    }
    const { results, effects, expired, returned, refusal } = decision
    for (const { userId, delta } of effects.userSeats) userSeats.set(userId, (userSeats.get(userId) ?? 0) + delta)
    if (section.maxPerUser !== null) seats.set(group.eventId, userSeats)
    for (const b of effects.inserts) if (b.idempotencyKey !== undefined) existing.set(b.idempotencyKey, b)
    const nextExpiry = nextExpiryAfter(section.nextExpiry, effects.nextExpiry)
    const record = batchRecord(effects)
    const joined = effects.waitlist.inserts.length
    decided.set(group.sectionId, {
      results, expired, returned, nextExpiry, section, refusal, recorded: recordedTypes(record), waitlist: { changes: effects.waitlist.changes, joined }
    })
    if (effects.inserts.length > 0 || effects.changes.length > 0 || effects.nextExpiry.replace || record.section ||
      joined > 0 || effects.waitlist.changes.length > 0) {
      writes.push({ eventId: group.eventId, sectionId: group.sectionId, owner: section.owner, effects, record })
    }
  }
  const after = writes.length === 0 ? new Map<string, number>() : await tx.apply(writes)
  // The section locks make this unreachable (the SQL write raises instead); if it ever happens, decide again on fresh data.
  if (after === null) throw new RetryableConflict('the guarded write refused the batch')

  return groups.map(group => {
    const done = decided.get(group.sectionId)
    if (done === undefined) {
      return { results: group.ops.map(() => NOT_FOUND), remaining: null, expired: [], returned: 0, nextExpiry: null, at: now, refusal: null, recorded: [], waitlist: NO_MOVES }
    }
    const { results, expired, returned, nextExpiry, section, refusal, recorded, waitlist } = done
    return { results, remaining: after.get(group.sectionId) ?? section.remaining, expired, returned, nextExpiry, at: now, refusal, recorded, waitlist }
  })
}
