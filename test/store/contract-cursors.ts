/**
 * The store contract for cursor pages (lib/domain/list-cursor.ts): a list paged
 * by each page's nextCursor gives every item once, in the list's order (ties of
 * one batch's createdAt included), however many items are added between its
 * pages; the list's filters and access filters combine with the cursor.
 */
import type { Test } from 'tap'
import type { BookingRequest, Decision } from '../../lib/domain/allocation.ts'
import type { Booking, Page, PageQuery } from '../../lib/api/schemas.ts'
import { listQuery, type ListKind } from '../../lib/domain/list-cursor.ts'
import type { BookingFilter } from '../../lib/store/driver.ts'
import type { StoredEvent } from '../../lib/domain/sale-rules.ts'
import type { Store } from '../../lib/store/store.ts'
import { sectionBatch } from '../helpers/section-batch.ts'

type Ids = { eventId: string, sectionId: string }
type Item = { _id: string, createdAt: string }

let made = 0
/** An owner no other test's events have: its bookings are one list of their own. */
const newOwner = (): string => `cursor-owner-${process.pid}-${++made}-${Date.now()}`

/** Newest first, as the stores list: createdAt, then id, both descending (ids are lowercase hex). */
const newestFirst = (a: Item, b: Item): number =>
  a.createdAt === b.createdAt ? (a._id < b._id ? 1 : a._id > b._id ? -1 : 0) : a.createdAt < b.createdAt ? 1 : -1

const ids = (items: readonly Item[]): string[] => items.map(i => i._id)

/** Every page of a list read by cursor, from the first; `between` runs after each page but the last. */
async function byCursor<T extends Item> (kind: ListKind, limit: number, read: (query: PageQuery) => Promise<Page<T>>,
  options: { between?: () => Promise<void>, done?: (page: Page<T>) => boolean } = {}): Promise<Array<Page<T>>> {
  const pages: Array<Page<T>> = []
  let cursor: string | undefined
  for (let n = 0; n < 1000; n++) {
    const page = await read(listQuery(cursor === undefined ? { limit } : { limit, cursor }, kind))
    pages.push(page)
    if (page.nextCursor === null || options.done?.(page) === true) return pages
    cursor = page.nextCursor
    await options.between?.()
  }
  throw new Error('a list that never ends')
}

export function cursorsContract (t: Test, store: () => Store): void {
  async function newEvent (owner: string, capacities: number[], over: { status?: 'draft' } = {}) {
    const event = await store().createEvent({ name: 'Cursors', sections: capacities.map((capacity, i) => ({ name: `S${i}`, price: 10, capacity })), ...over }, owner)
    return { event, sections: event.sections.map(s => ({ eventId: event._id, sectionId: s._id })) }
  }

  /** One batch of bookings in a section (one createdAt for all), as the batcher sends them. */
  async function book (ids: Ids, users: string[], hold = false): Promise<Booking[]> {
    const requests: BookingRequest[] = users.map(userId => ({ ...ids, qty: 1, userId, ...(hold ? { holdDefaultMs: 600_000 } : {}) }))
    const { results } = await sectionBatch(store(), ids.eventId, ids.sectionId, requests.map(request => ({ kind: 'book' as const, request })))
    return (results as Decision[]).map(d => {
      if (d.kind !== 'confirmed' && d.kind !== 'held') throw new Error(`not booked: ${JSON.stringify(d)}`)
      return d.booking
    })
  }

  /** The whole list by offset, at once: the order a cursor's pages must keep. */
  const allBookings = async (filter: Omit<BookingFilter, 'page' | 'limit'>) => (await store().listBookings({ ...filter, page: 1, limit: 100 })).items
  const bookingPages = async (filter: Omit<BookingFilter, 'page' | 'limit'>, limit: number, between?: () => Promise<void>) =>
    await byCursor('bookings', limit, async query => await store().listBookings({ ...filter, ...query }), { between })

  t.test('cursors: bookings paged by cursor come each once, in the list\'s order', async (t: Test) => {
    const { event, sections: [s0, s1] } = await newEvent(newOwner(), [20, 20])
    // batches of several bookings: each batch's bookings share one createdAt, ordered by id
    await book(s0, ['a', 'b', 'c', 'd'])
    await book(s1, ['e', 'f', 'g'])
    await book(s0, ['h', 'i', 'j', 'k', 'l'])
    const all = await allBookings({ eventId: event._id })
    t.equal(all.length, 12)
    t.same(ids(all), ids([...all].sort(newestFirst)), 'the list is newest first, ties by id')

    const pages = await bookingPages({ eventId: event._id }, 5)
    t.same(pages.map(p => p.items.length), [5, 5, 2])
    t.same(ids(pages.flatMap(p => p.items)), ids(all), 'each once, in order')
    t.same(pages.map(p => [p.total, p.page, p.limit]), [[12, 1, 5], [12, 1, 5], [12, 1, 5]], 'the whole list\'s total on every page')
    t.same(pages.map(p => p.nextCursor === null), [false, false, true], 'a short page ends the list')

    const even = await bookingPages({ eventId: event._id }, 4)
    t.same(even.map(p => p.items.length), [4, 4, 4, 0], 'a full last page has a cursor, to an empty page')
    t.same(ids(even.flatMap(p => p.items)), ids(all))

    // a numbered page's cursor goes on from it
    const second = await store().listBookings({ eventId: event._id, page: 2, limit: 4 })
    t.ok(second.nextCursor, 'a numbered page carries nextCursor')
    const rest = await store().listBookings({ eventId: event._id, ...listQuery({ limit: 4, cursor: second.nextCursor ?? '' }, 'bookings') })
    t.same(ids(rest.items), ids(all.slice(8)))
    const last = await store().listBookings({ eventId: event._id, page: 3, limit: 5 })
    t.equal(last.nextCursor, null, 'a short numbered page has none')
  })

  t.test('cursors: bookings made while paging never make one skipped or repeated', async (t: Test) => {
    const { event, sections: [s0, s1] } = await newEvent(newOwner(), [100, 100])
    for (const batch of [['a', 'b'], ['c'], ['d', 'e', 'f'], ['g'], ['h', 'i']]) await book(s0, batch)
    await book(s1, ['j', 'k'])
    const before = await allBookings({ eventId: event._id })
    t.equal(before.length, 11)

    let round = 0
    const added: Booking[] = []
    // between pages, new bookings in both sections: newer than every page read, so above every cursor
    const between = async () => {
      round++
      added.push(...(await Promise.all([book(s0, [`new-${round}-a`, `new-${round}-b`]), book(s1, [`new-${round}-c`])])).flat())
    }
    const seen = (await bookingPages({ eventId: event._id }, 3, between)).flatMap(p => p.items)
    t.ok(round >= 3, 'bookings were made between pages')
    t.same(ids(seen), ids(before), 'every booking there at the start, once, in order; none made since')

    // what offsets would have done: the same reads by page number repeat what the new bookings pushed down
    const offset = await store().listBookings({ eventId: event._id, page: 2, limit: 3 })
    t.notSame(ids(offset.items), ids(before.slice(3, 6)), 'offset pages shift as bookings are made')
    t.equal(added.length, round * 3)
  })

  t.test('cursors: events created while paging never make one skipped or repeated', async (t: Test) => {
    const owner = newOwner()
    const mine: StoredEvent[] = []
    for (let i = 0; i < 7; i++) mine.push((await newEvent(owner, [1], i % 3 === 0 ? { status: 'draft' } : {})).event)
    const oldest = [...mine].sort(newestFirst).at(-1)
    let created = 0
    const between = async () => { created++; await newEvent(owner, [1]) }
    // until the page holding the oldest of them: the list goes on with every other test's events
    const pages = await byCursor('events', 2, async query => await store().listEvents({ ...query, drafts: 'all' }),
      { between, done: page => page.items.some(e => e._id === oldest?._id) })
    const seen = pages.flatMap(p => p.items)
    t.ok(created >= 3, 'events were created between pages')
    t.equal(new Set(ids(seen)).size, seen.length, 'none repeated')
    t.same(ids(seen), ids([...seen].sort(newestFirst)), 'newest first across pages')
    t.same(ids(seen.filter(e => e.owner === owner)), ids([...mine].sort(newestFirst)), 'each once, in order; none created since')
  })

  t.test('cursors: filters and access filters combine with cursors', async (t: Test) => {
    const owner = newOwner()
    const { event, sections: [s0, s1] } = await newEvent(owner, [50, 50])
    const other = await newEvent(newOwner(), [50])
    for (let i = 0; i < 3; i++) {
      await book(s0, ['ann', 'bob', 'ann'])
      await book(s1, ['bob', 'ann'], true)
      await book(other.sections[0], ['ann', 'bob'])
    }
    const filters: Array<Omit<BookingFilter, 'page' | 'limit'>> = [
      { eventId: event._id },
      { eventId: event._id, userId: 'ann' },
      { sectionId: s1.sectionId },
      { eventId: event._id, sectionId: s0.sectionId },
      { eventId: event._id, status: 'held' },
      { eventOwner: owner },
      { eventOwner: owner, userId: 'bob' },
      { eventOwner: owner, status: 'confirmed', sectionId: s0.sectionId }
    ]
    for (const filter of filters) {
      const all = await allBookings(filter)
      const pages = await bookingPages(filter, 2)
      t.ok(all.length >= 3, `${JSON.stringify(filter)}: a list of several pages`)
      t.same(ids(pages.flatMap(p => p.items)), ids(all), `${JSON.stringify(filter)}: the list's bookings, each once, in order`)
      t.ok(pages.every(p => p.total === all.length), `${JSON.stringify(filter)}: its total on every page`)
    }

    // drafts: a viewer's cursor pages hold what its offset pages hold
    const drafter = newOwner()
    const mine: StoredEvent[] = []
    for (let i = 0; i < 4; i++) mine.push((await newEvent(drafter, [1], i % 2 === 0 ? { status: 'draft' } : {})).event)
    const oldest = mine[0]
    for (const drafts of ['none', 'all', { owner: drafter }, { owner: owner }] as const) {
      const offset = (await store().listEvents({ page: 1, limit: 100, drafts })).items
      const upTo = offset.findIndex(e => newestFirst(e, oldest) > 0)
      const expected = upTo === -1 ? offset : offset.slice(0, upTo)
      const pages = await byCursor('events', 3, async query => await store().listEvents({ ...query, drafts }),
        { done: page => page.items.some(e => newestFirst(e, oldest) > 0) })
      const seen = pages.flatMap(p => p.items).filter(e => newestFirst(e, oldest) <= 0)
      t.same(ids(seen), ids(expected), `drafts ${JSON.stringify(drafts)}: as by offset`)
      const draftsSeen = seen.filter(e => e.owner === drafter && e.status === 'draft').length
      t.equal(draftsSeen, drafts === 'all' || (typeof drafts === 'object' && drafts.owner === drafter) ? 2 : 0, `drafts ${JSON.stringify(drafts)}: the drafts it may see`)
    }
  })
}
