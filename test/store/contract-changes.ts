/**
 * The store contract for the outbox: every change of a booking, an event and
 * a section is recorded by its own write, with the resource as it was left;
 * a refused or unchanged write records nothing; the feed is read in order by
 * cursor, filtered by type and organizer; webhook endpoints keep their place
 * in it under a lease only one holder has at a time; old delivered records
 * are pruned, undelivered ones kept.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { Test } from 'tap'
import type { BookingRequest } from '../../lib/domain/allocation.ts'
import type { StoredChange } from '../../lib/domain/changes.ts'
import { InvalidInputError } from '../../lib/domain/errors.ts'
import type { SectionOp } from '../../lib/domain/section-ops.ts'
import type { Store } from '../../lib/store/store.ts'
import { granted, sectionBatch } from '../helpers/section-batch.ts'

const ORGANIZER = 'organizer-changes'
type Ids = { eventId: string, sectionId: string }

/** The feed from `after` to its end, following nextCursor; and the cursor it ends at. */
export async function readFeed (store: Store, after?: string, query: { types?: StoredChange['type'][], owner?: string } = {}): Promise<{ items: StoredChange[], cursor: string | undefined }> {
  const items: StoredChange[] = []
  let cursor = after
  for (;;) {
    const page = await store.listChanges({ after: cursor, limit: 7, ...query })
    items.push(...page.items)
    if (page.items.length === 0) return { items, cursor: page.nextCursor }
    cursor = page.nextCursor
  }
}

/**
 * The feed from `after` once it shows `seen`: records come into the feed once
 * every transaction older than theirs has ended, anywhere on the database
 * server (other suites run beside this one), so a read may briefly lag.
 */
export async function feedShowing (store: Store, after: string | undefined, seen: (c: StoredChange) => boolean, query: { types?: StoredChange['type'][], owner?: string } = {}): Promise<{ items: StoredChange[], cursor: string | undefined }> {
  for (let tries = 0; ; tries++) {
    const feed = await readFeed(store, after, query)
    if (feed.items.some(seen) || tries >= 200) return feed
    await sleep(50)
  }
}

export function changesContract (t: Test, store: () => Store): void {
  const batch = async (ids: Ids, ...ops: SectionOp[]) => (await sectionBatch(store(), ids.eventId, ids.sectionId, ops)).results
  const book = async (request: BookingRequest) => (await batch(request, { kind: 'book', request }))[0]

  t.test('changes: each change recorded once, in order, with the resource as it left it', async (t: Test) => {
    const { cursor: start } = await readFeed(store())
    const event = await store().createEvent({ name: 'Outbox', sections: [{ name: 'GA', price: 10, capacity: 10 }] }, ORGANIZER)
    const ids = { eventId: event._id, sectionId: event.sections[0]._id }
    const sold = await book({ ...ids, qty: 2, userId: 'u1' })
    const held = await book({ ...ids, qty: 1, userId: 'u2', holdDefaultMs: 600_000 })
    t.equal(sold.kind, 'confirmed')
    if (held.kind !== 'held' || sold.kind !== 'confirmed') return
    await batch(ids, { kind: 'confirm', bookingId: held.booking._id, access: granted, paymentRef: 'pay-1' })
    await batch(ids, { kind: 'cancel', bookingId: sold.booking._id, access: granted })
    const brief = await book({ ...ids, qty: 3, userId: 'u3', holdDefaultMs: 1 })
    if (brief.kind !== 'held') return t.fail('held')
    t.match(await book({ ...ids, qty: 50, userId: 'many' }), { kind: 'sold_out' }, 'refused: nothing recorded')
    await sleep(20)
    await batch(ids, { kind: 'expire' })
    await batch(ids, { kind: 'edit', change: { capacity: 12 }, mayEdit: () => true })
    await store().changeEvent(event._id, () => ({ fields: { venue: 'Hall' }, addSections: [] }))
    await store().changeEvent(event._id, () => ({ fields: { venue: 'Hall' }, addSections: [] }))
    await store().changeEvent(event._id, () => ({ fields: { status: 'closed' }, addSections: [] }))
    // refused: nothing written, nothing recorded
    t.same(await book({ ...ids, qty: 1, userId: 'late' }), { kind: 'closed' })
    await t.rejects(store().changeEvent(event._id, () => { throw new InvalidInputError('name', 'no') }))

    const { items } = await feedShowing(store(), start, c => c.eventId === event._id && c.type === 'event.closed')
    const mine = items.filter(c => c.eventId === event._id)
    t.same(mine.map(c => c.type), [
      'event.created', 'booking.confirmed', 'booking.held', 'booking.confirmed', 'booking.cancelled', 'booking.held', 'booking.expired',
      'section.changed', 'event.updated', 'event.closed'
    ])
    t.equal(new Set(mine.map(c => c.id)).size, mine.length, 'ids are unique')
    t.ok(mine.every(c => c.owner === ORGANIZER && !Number.isNaN(Date.parse(c.occurredAt))), 'organizer and moment of each')
    t.match(mine[0].data, { _id: event._id, name: 'Outbox', saleState: 'on_sale', sections: [{ capacity: 10 }] })
    t.notOk('owner' in (mine[0].data as object), 'the event as answered: no owner')
    t.same(mine[1].data, { ...sold.booking }, 'a booking as answered when made')
    t.match(mine[3].data, { _id: held.booking._id, status: 'confirmed', paymentRef: 'pay-1', confirmedAt: String })
    t.match(mine[4].data, { _id: sold.booking._id, status: 'cancelled', cancelledAt: String })
    t.match(mine[6].data, { _id: brief.booking._id, status: 'expired' })
    t.match(mine[7].data, { _id: ids.sectionId, name: 'GA', capacity: 12, remaining: 11, held: 0, sold: 1 })
    t.match(mine[8].data, { venue: 'Hall' })
    t.match(mine[9].data, { status: 'closed', saleState: 'closed' })
    t.equal(mine[1].occurredAt, sold.booking.createdAt, 'a booking\'s record at its batch\'s moment')

    // types and organizer filter; a cursor from the end reads nothing more
    const { items: held2 } = await feedShowing(store(), start, c => c.data !== null && (c.data as { _id: string })._id === brief.booking._id, { types: ['booking.held'] })
    t.same(held2.filter(c => c.eventId === event._id).map(c => c.data), [held.booking, brief.booking].map(b => ({ ...b })))
    t.same((await readFeed(store(), start, { owner: 'someone-else' })).items.filter(c => c.eventId === event._id), [])
    const end = await feedShowing(store(), start, c => c.eventId === event._id && c.type === 'event.closed')
    t.same((await store().listChanges({ after: end.cursor, limit: 10 })).items, [])
    t.equal((await store().listChanges({ after: end.cursor, limit: 10 })).nextCursor, end.cursor, 'an empty page answers the cursor it was given')
    t.match(await store().listChanges({ after: 'not-a-cursor', limit: 5 }).catch((err: unknown) => err), { details: { field: 'after' } }, 'a cursor it did not make names `after`')
  })

  t.test('changes: a webhook starts at the head, holds one lease at a time, and keeps its place', async (t: Test) => {
    const before = await store().createEvent({ name: 'Before hook', sections: [{ name: 'GA', price: 1, capacity: 5 }] }, ORGANIZER)
    const hook = await store().createWebhook({ _id: `wh_${before._id}`, owner: ORGANIZER, url: 'https://example.com/hook', types: ['event.created'], secret: 'whsec_x' })
    t.match(hook, { disabled: false, failures: 0, delivered: 0, owner: ORGANIZER })
    const after = await store().createEvent({ name: 'After hook', sections: [{ name: 'GA', price: 1, capacity: 5 }] }, ORGANIZER)
    // (what was recorded just before it may be ahead too, while an older transaction was still open)
    const { items } = await feedShowing(store(), hook.cursor, c => c.eventId === after._id)
    t.ok(items.some(c => c.eventId === after._id), 'what is recorded after it is ahead of its cursor')
    const behind = items.findIndex(c => c.eventId === after._id)
    // a place between the two: `before` passed, `after` not
    const between = behind === 0 ? hook.cursor : items[behind - 1].cursor

    const claimedA = await store().claimWebhooks('instance-a', 60_000, 100)
    t.ok(claimedA.some(w => w._id === hook._id), 'a claims it')
    const claimedB = await store().claimWebhooks('instance-b', 60_000, 100)
    t.notOk(claimedB.some(w => w._id === hook._id), 'b does not while a holds it')
    const progress = { cursor: between, failures: 2, failingSince: new Date().toISOString(), nextAttemptAt: new Date(Date.now() + 600_000).toISOString(), lastError: 'HTTP 500', disabled: false, delivered: 3 }
    t.equal(await store().saveWebhook(hook._id, 'instance-b', progress, 60_000), false, 'b may not save it')
    t.equal(await store().saveWebhook(hook._id, 'instance-a', progress, 60_000), true, 'a saves it')
    t.match(await store().getWebhook(hook._id), { cursor: progress.cursor, failures: 2, lastError: 'HTTP 500', delivered: 3, disabled: false })
    t.notOk((await store().claimWebhooks('instance-a', 60_000, 100)).some(w => w._id === hook._id), 'not due before its next try')
    await store().saveWebhook(hook._id, 'instance-a', { ...progress, failures: 0, failingSince: undefined, lastError: undefined, nextAttemptAt: new Date().toISOString(), delivered: 0 }, 1)
    await sleep(20)
    t.ok((await store().claimWebhooks('instance-b', 60_000, 100)).some(w => w._id === hook._id), 'b takes it once a\'s lease ran out')
    await store().releaseWebhooks('instance-b')
    t.ok((await store().claimWebhooks('instance-a', 60_000, 100)).some(w => w._id === hook._id), 'released: a takes it again')
    t.ok((await store().listWebhooks(ORGANIZER)).some(w => w._id === hook._id))
    t.same(await store().listWebhooks('nobody'), [])

    // pruning: only what every enabled endpoint is past, and older than asked
    const future = new Date(Date.now() + 60_000)
    while (await store().pruneChanges(future, 1000) > 0) { /* in batches, to the end */ }
    const left = (await feedShowing(store(), undefined, c => c.eventId === after._id)).items
    t.ok(left.some(c => c.eventId === after._id), 'a change the endpoint has not passed is kept')
    t.notOk(left.some(c => c.eventId === before._id), 'one every endpoint is past is pruned')
    t.equal(await store().deleteWebhook(hook._id), true)
    t.equal(await store().deleteWebhook(hook._id), false)
    t.equal(await store().getWebhook(hook._id), null)
    await store().pruneChanges(new Date(0), 1000)
    t.ok((await readFeed(store())).items.some(c => c.eventId === after._id), 'nothing newer than asked is pruned')
  })
}
