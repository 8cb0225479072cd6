/**
 * Cursor pages through the HTTP API, on every store set-up: GET /api/bookings
 * paged by nextCursor while bookings are being made gives every booking there
 * at the start exactly once, newest first; the events list likewise carries
 * cursors; a malformed cursor, or a cursor with page, is a 400 naming the field.
 */
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../helpers/build-app.ts'
import { createEvent as createEventVia } from '../helpers/create-event.ts'
import { injectAs, injectClient } from '../helpers/http-client.ts'
import { missing } from '../helpers/services.ts'
import { STORE_SETUPS } from '../helpers/store-setups.ts'
import { principals } from '../helpers/tokens.ts'

const as = await principals()

interface Listed { items: Array<{ _id: string, createdAt: string }>, total: number, page: number, limit: number, nextCursor: string | null }

const asService = async (app: FastifyInstance, url: string) => await injectAs(app, as.service, url)

const book = async (app: FastifyInstance, eventId: string, sectionId: string, userId: string): Promise<string> => {
  const res = await injectAs(app, as.service, { method: 'POST', url: '/api/bookings', payload: { eventId, sectionId, qty: 1, userId } })
  if (res.statusCode !== 201) throw new Error(`booking answered ${res.statusCode}: ${res.body}`)
  return res.json().data._id
}

/** Every page of `url` (a query string of filters) by cursor; `between` runs after each page but the last. */
async function pages (app: FastifyInstance, url: string, between?: () => Promise<void>): Promise<Listed[]> {
  const read: Listed[] = []
  let cursor: string | null = null
  do {
    const res = await asService(app, cursor === null ? url : `${url}&cursor=${cursor}`)
    if (res.statusCode !== 200) throw new Error(`${url} answered ${res.statusCode}: ${res.body}`)
    const page: Listed = res.json().data
    read.push(page)
    cursor = page.nextCursor
    if (cursor !== null) await between?.()
  } while (cursor !== null && read.length < 1000)
  return read
}

for (const setup of STORE_SETUPS) {
  const skip = await missing(...setup.needs)
  if (skip !== undefined) console.log(`# SKIPPED list cursors on ${setup.name}: ${skip}`)

  t.test(`list cursors on ${setup.name}`, { skip }, async (t: Test) => {
    const app = await buildApp(t, await setup.env(t))
    const organizer = injectClient(app, as.organizer)

    t.test('bookings paged by cursor while bookings are made: each one there at the start, once, in order', async t => {
      const { eventId, sectionIds } = await createEventVia(organizer, [500, 500])
      // one at a time and some at once: bookings of one batch share a createdAt
      for (let i = 0; i < 10; i++) await book(app, eventId, sectionIds[i % 2], `early-${i}`)
      await Promise.all(Array.from({ length: 20 }, async (_, i) => await book(app, eventId, sectionIds[i % 2], `crowd-${i}`)))
      const start: Listed = (await asService(app, `/api/bookings?eventId=${eventId}&limit=100`)).json().data
      t.equal(start.items.length, 30)

      // bookings made all along, not only between pages
      let paging = true
      let made = 0
      const maker = (async () => {
        while (paging) await Promise.all([0, 1].map(async s => { await book(app, eventId, sectionIds[s], `during-${made++}`) }))
      })()
      let between = 0
      const read = await pages(app, `/api/bookings?eventId=${eventId}&limit=4`, async () => {
        between++
        await book(app, eventId, sectionIds[between % 2], `between-${between}`)
      }).finally(() => { paging = false })
      await maker

      const seen = read.flatMap(p => p.items.map(b => b._id))
      t.ok(made > 0 && between >= 7, `bookings were made while paging (${made} all along, ${between} between pages)`)
      t.equal(new Set(seen).size, seen.length, 'no booking seen twice')
      const startIds = start.items.map(b => b._id)
      t.same(seen.filter(id => startIds.includes(id)), startIds, 'every booking there at the start, once, newest first')
      const order = read.flatMap(p => p.items).map(b => [b.createdAt, b._id].join(' '))
      t.same(order, [...order].sort().reverse(), 'newest first across pages')
      t.ok(read.every(p => p.page === 1 && p.limit === 4), 'a cursor page answers page 1')
      t.ok(read.slice(0, -1).every(p => p.items.length === 4 && p.nextCursor !== null), 'full pages carry a cursor')
      t.equal(read.at(-1)?.nextCursor, null, 'the last one none')
    })

    t.test('the alias, filters and an offset page\'s cursor go on as the list', async t => {
      const { eventId, sectionIds } = await createEventVia(organizer, [50, 50])
      for (let i = 0; i < 9; i++) await book(app, eventId, sectionIds[i % 2], i % 3 === 0 ? 'ann' : 'bob')
      const all: Listed = (await asService(app, `/bookings?eventId=${eventId}&userId=bob&limit=100`)).json().data
      t.equal(all.items.length, 6)
      t.equal(all.nextCursor, null, 'a short page: no cursor')
      const read = await pages(app, `/bookings?eventId=${eventId}&userId=bob&limit=2`)
      t.same(read.flatMap(p => p.items.map(b => b._id)), all.items.map(b => b._id), '/bookings pages alike, the filters kept')
      t.ok(read.every(p => p.total === 6), 'the total on every page')

      const first: Listed = (await asService(app, `/api/bookings?eventId=${eventId}&page=1&limit=4`)).json().data
      t.type(first.nextCursor, 'string', 'an offset page carries nextCursor')
      const next: Listed = (await asService(app, `/api/bookings?eventId=${eventId}&limit=4&cursor=${first.nextCursor ?? ''}`)).json().data
      const offset: Listed = (await asService(app, `/api/bookings?eventId=${eventId}&page=2&limit=4`)).json().data
      t.same(next.items.map(b => b._id), offset.items.map(b => b._id), 'with nothing made since, the cursor\'s page is page 2')
    })

    t.test('events paged by cursor', async t => {
      const created: string[] = []
      for (let i = 0; i < 5; i++) created.push((await createEventVia(organizer, [1])).eventId)
      const first = await app.inject('/api/events?limit=3')
      t.equal(first.statusCode, 200)
      const page: Listed = first.json().data
      t.same(page.items.map(e => e._id), created.slice(-3).reverse(), 'newest first')
      t.type(page.nextCursor, 'string')
      await createEventVia(organizer, [1])
      const next: Listed = (await app.inject(`/api/events?limit=3&cursor=${page.nextCursor ?? ''}`)).json().data
      t.same(next.items.slice(0, 2).map(e => e._id), created.slice(0, 2).reverse(), 'the next page goes on after the last one seen')
    })

    t.test('a malformed cursor, or one with page: 400 naming the field', async t => {
      const { eventId, sectionIds } = await createEventVia(organizer, [5])
      await book(app, eventId, sectionIds[0], 'u')
      await book(app, eventId, sectionIds[0], 'u')
      const cursor: string = (await asService(app, `/api/bookings?eventId=${eventId}&limit=1`)).json().data.nextCursor
      const eventCursor: string = (await app.inject('/api/events?limit=1')).json().data.nextCursor
      const json = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')
      const cases: Array<[string, string, string]> = [
        ['not base64url', '/api/bookings?cursor=a%2Bb', 'cursor'],
        ['base64url of nothing', '/api/bookings?cursor=abc', 'cursor'],
        ['not a cursor\'s JSON', `/api/bookings?cursor=${json({ createdAt: '2026-01-01T00:00:00.000Z' })}`, 'cursor'],
        ['no moment', `/api/bookings?cursor=${json(['later', '0123456789abcdef01234567'])}`, 'cursor'],
        ['an operator', `/bookings?cursor=${json(['2026-01-01T00:00:00.000Z', { $gt: '' }])}`, 'cursor'],
        ['too long', `/api/bookings?cursor=${'a'.repeat(201)}`, 'cursor'],
        ['empty', '/api/bookings?cursor=', 'cursor'],
        ['with page', `/api/bookings?eventId=${eventId}&page=1&cursor=${cursor}`, 'page'],
        ['with page, on the alias', `/bookings?page=2&cursor=${cursor}`, 'page'],
        ['events: malformed', '/api/events?cursor=abc', 'cursor'],
        ['events: a booking\'s cursor', `/api/events?cursor=${cursor}`, 'cursor'],
        ['events: with page', `/api/events?page=1&cursor=${eventCursor}`, 'page']
      ]
      for (const [what, url, field] of cases) {
        const res = url.startsWith('/api/events') ? await app.inject(url) : await asService(app, url)
        t.equal(res.statusCode, 400, `${what}: 400`)
        t.match(res.json(), { success: false, error: { code: 'VALIDATION_ERROR', field, message: new RegExp(field) } }, `${what}: names ${field}`)
      }
      const ok = await asService(app, `/api/bookings?eventId=${eventId}&limit=1&cursor=${cursor}`)
      t.equal(ok.statusCode, 200, 'the cursor itself is fine')
      t.equal(ok.json().data.items.length, 1)
    })
  })
}
