/**
 * The HTTP API through app.inject, on every store set-up: the seed's requests,
 * the envelope, validation, idempotency, cancellation and restarts.
 */
import t, { type Test } from 'tap'
import type { FastifyInstance, InjectOptions } from 'fastify'
import { buildApp } from '../helpers/build-app.ts'
import { createEvent as createEventVia } from '../helpers/create-event.ts'
import { injectAs, injectClient } from '../helpers/http-client.ts'
import { missing } from '../helpers/services.ts'
import { STORE_SETUPS } from '../helpers/store-setups.ts'
import { principals } from '../helpers/tokens.ts'

const UNKNOWN = '0123456789abcdef01234567'

// an organizer creates the events; a service books on behalf of the userIds the tests name and sees every booking
const as = await principals()

const createEvent = async (app: FastifyInstance, capacities: number[]) =>
  await createEventVia(injectClient(app, as.organizer), capacities, { name: 'Concert', price: 100 })

/** A bookings request as the service (event reads are public: plain app.inject). */
const asService = async (app: FastifyInstance, request: string | InjectOptions) => await injectAs(app, as.service, request)

const book = (app: FastifyInstance, payload: unknown, headers: Record<string, string> = {}) =>
  asService(app, { method: 'POST', url: '/bookings', payload: payload as Record<string, unknown>, headers })

for (const setup of STORE_SETUPS) {
  const skip = await missing(...setup.needs)
  if (skip !== undefined) console.log(`# SKIPPED API suite on ${setup.name}: ${skip}`)

  t.test(`API on ${setup.name}`, { skip }, async (t: Test) => {
    const env = await setup.env(t)
    const app = await buildApp(t, env)

    t.test('the seed README flow: create an event, book, list', async t => {
      const { eventId, sectionIds, event } = await createEvent(app, [5])
      t.match(event, { name: 'Concert', sections: [{ name: 'S0', price: 100, capacity: 5, remaining: 5 }] })
      const res = await book(app, { eventId, sectionId: sectionIds[0], qty: 2, userId: 'user-1' })
      t.equal(res.statusCode, 201)
      t.match(res.json(), { success: true, data: { eventId, sectionId: sectionIds[0], qty: 2, userId: 'user-1', unitPrice: 100, amount: 200, status: 'confirmed' } })
      t.equal(res.json().data._id.slice(24), sectionIds[0], 'a booking\'s id: its own ObjectId, then its section\'s id')
      t.match(res.json().data._id, /^[0-9a-f]{48}$/)
      const list = await asService(app, `/bookings?eventId=${eventId}`)
      t.equal(list.statusCode, 200)
      t.match(list.json(), { success: true, data: { total: 1, page: 1, limit: 20, items: [{ _id: res.json().data._id }] } })
      const alias = await asService(app, `/api/bookings?eventId=${eventId}&userId=user-1`)
      t.same(alias.json().data.items, list.json().data.items, '/api/bookings is the same list')
      const one = await asService(app, `/api/bookings/${res.json().data._id}`)
      t.same(one.json().data, res.json().data)
      const after = await app.inject(`/api/events/${eventId}`)
      t.equal(after.json().data.sections[0].remaining, 3, 'remaining is live')
    })

    t.test('the seed race: 20 users for 5 seats', async t => {
      const { eventId, sectionIds } = await createEvent(app, [5])
      const answers = await Promise.all(Array.from({ length: 20 }, (_, i) =>
        book(app, { eventId, sectionId: sectionIds[0], qty: 1, userId: `racer-${i}` })))
      const statuses = answers.map(r => r.statusCode)
      t.equal(statuses.filter(s => s === 201).length, 5, '5 booked')
      t.equal(statuses.filter(s => s === 409).length, 15, '15 sold out')
      for (const r of answers.filter(r => r.statusCode === 409)) {
        t.match(r.json(), { success: false, error: { code: 'SOLD_OUT', remaining: 0 } })
      }
      t.equal((await app.inject(`/api/events/${eventId}`)).json().data.sections[0].remaining, 0)
      t.equal((await asService(app, `/bookings?eventId=${eventId}`)).json().data.total, 5)
    })

    t.test('sold out names what is left', async t => {
      const { eventId, sectionIds } = await createEvent(app, [3])
      const res = await book(app, { eventId, sectionId: sectionIds[0], qty: 4, userId: 'u' })
      t.equal(res.statusCode, 409)
      t.match(res.json().error, { code: 'SOLD_OUT', remaining: 3, requested: 4 })
      t.equal((await book(app, { eventId, sectionId: sectionIds[0], qty: 3, userId: 'u' })).statusCode, 201, 'the 3 that remain can be booked')
    })

    t.test('unknown event, section, booking: 404 in the envelope', async t => {
      const { eventId, sectionIds } = await createEvent(app, [1])
      for (const [what, res] of [
        ['event', await book(app, { eventId: UNKNOWN, sectionId: sectionIds[0], qty: 1, userId: 'u' })],
        ['section', await book(app, { eventId, sectionId: UNKNOWN, qty: 1, userId: 'u' })],
        ['GET event', await app.inject(`/api/events/${UNKNOWN}`)],
        ['GET booking', await asService(app, `/api/bookings/${UNKNOWN}`)],
        ['cancel', await asService(app, { method: 'POST', url: `/api/bookings/${UNKNOWN}/cancel` })],
        ['route', await app.inject('/nope')]
      ] as const) {
        t.equal(res.statusCode, 404, what)
        t.match(res.json(), { success: false, error: { code: 'NOT_FOUND', message: String } }, what)
      }
    })

    t.test('bad input: 4xx naming the field, never a 500, nothing changed', async t => {
      const { eventId, sectionIds } = await createEvent(app, [5])
      const good = { eventId, sectionId: sectionIds[0], qty: 1, userId: 'u' }
      const cases: Array<[string, unknown, number, string]> = [
        ['unknown field', { ...good, admin: true }, 400, 'admin'],
        ['qty 0', { ...good, qty: 0 }, 400, 'qty'],
        ['qty too big', { ...good, qty: 11 }, 400, 'qty'],
        ['qty as string', { ...good, qty: '2' }, 400, 'qty'],
        ['qty fractional', { ...good, qty: 1.5 }, 400, 'qty'],
        ['missing userId', { eventId, sectionId: sectionIds[0], qty: 1 }, 400, 'userId'],
        ['userId number', { ...good, userId: 42 }, 400, 'userId'],
        ['malformed eventId', { ...good, eventId: 'abc' }, 400, 'eventId'],
        ['malformed sectionId', { ...good, sectionId: { $gt: '' } }, 400, 'sectionId'],
        ['array body', [good], 400, 'body'],
        ['null body', null, 400, 'body']
      ]
      for (const [name, payload, status, field] of cases) {
        const res = await asService(app, { method: 'POST', url: '/bookings', headers: { 'content-type': 'application/json' }, payload: JSON.stringify(payload) })
        t.equal(res.statusCode, status, `${name}: ${status}`)
        t.equal(res.json().error?.field, field, `${name}: names ${field}`)
        t.match(res.json().error.message, field === 'body' ? /body/ : new RegExp(field), `${name}: message names the field`)
      }
      const malformed = await asService(app, { method: 'POST', url: '/bookings', headers: { 'content-type': 'application/json' }, payload: '{"eventId":' })
      t.equal(malformed.statusCode, 400)
      t.equal(malformed.json().error.code, 'INVALID_JSON')
      const text = await asService(app, { method: 'POST', url: '/bookings', headers: { 'content-type': 'application/xml' }, payload: '<b/>' })
      t.equal(text.statusCode, 415)
      const huge = await asService(app, { method: 'POST', url: '/bookings', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ ...good, userId: 'x'.repeat(100_000) }) })
      t.equal(huge.statusCode, 413)
      t.equal(huge.json().error.code, 'PAYLOAD_TOO_LARGE')
      const badKey = await book(app, good, { 'idempotency-key': 'k'.repeat(256) })
      t.equal(badKey.statusCode, 400)
      t.match(badKey.json().error.message, /idempotency-key/)
      const badQuery = await asService(app, `/bookings?limit=1000`)
      t.equal(badQuery.statusCode, 400)
      t.equal(badQuery.json().error.field, 'limit')
      const unknownQuery = await asService(app, `/bookings?evil=1`)
      t.equal(unknownQuery.statusCode, 400)
      t.equal(unknownQuery.json().error.field, 'evil')
      const badEvent = await injectAs(app, as.organizer, { method: 'POST', url: '/api/events', payload: { name: 'X', sections: [{ name: 'A', price: -1, capacity: 1 }] } })
      t.equal(badEvent.statusCode, 400)
      t.equal(badEvent.json().error.field, 'sections.0.price')
      const noSections = await injectAs(app, as.organizer, { method: 'POST', url: '/api/events', payload: { name: 'X', sections: [] } })
      t.equal(noSections.statusCode, 400)
      t.equal((await app.inject(`/api/events/${eventId}`)).json().data.sections[0].remaining, 5, 'no bad request changed the section')
      t.equal((await asService(app, `/bookings?eventId=${eventId}`)).json().data.total, 0)
    })

    t.test('Idempotency-Key: replay, reuse with another body, racing retries', async t => {
      const { eventId, sectionIds } = await createEvent(app, [10])
      const body = { eventId, sectionId: sectionIds[0], qty: 2, userId: 'payer' }
      const key = `key-${Math.random()}`
      const first = await book(app, body, { 'idempotency-key': key })
      t.equal(first.statusCode, 201)
      t.equal(first.headers['idempotent-replayed'], undefined)
      const again = await book(app, body, { 'idempotency-key': key })
      t.equal(again.statusCode, 201)
      t.equal(again.headers['idempotent-replayed'], 'true')
      t.same(again.json().data, first.json().data, 'the original booking')
      const reused = await book(app, { ...body, qty: 3 }, { 'idempotency-key': key })
      t.equal(reused.statusCode, 422)
      t.equal(reused.json().error.code, 'IDEMPOTENCY_KEY_REUSED')

      const raceKey = `race-${Math.random()}`
      const racing = await Promise.all(Array.from({ length: 10 }, () => book(app, { ...body, userId: 'racer' }, { 'idempotency-key': raceKey })))
      t.same(racing.map(r => r.statusCode), Array(10).fill(201), 'every racing retry gets the booking')
      t.equal(new Set(racing.map(r => r.json().data._id)).size, 1, 'one booking')
      t.equal(racing.filter(r => r.headers['idempotent-replayed'] === 'true').length, 9)
      t.equal((await app.inject(`/api/events/${eventId}`)).json().data.sections[0].remaining, 6, 'seats taken once per key')
    })

    t.test('cancel: seats go back, idempotent', async t => {
      const { eventId, sectionIds } = await createEvent(app, [2])
      const booked = (await book(app, { eventId, sectionId: sectionIds[0], qty: 2, userId: 'c' })).json().data
      t.equal((await book(app, { eventId, sectionId: sectionIds[0], qty: 1, userId: 'd' })).statusCode, 409)
      const cancel = await asService(app, { method: 'POST', url: `/api/bookings/${booked._id}/cancel` })
      t.equal(cancel.statusCode, 200)
      t.match(cancel.json().data, { _id: booked._id, status: 'cancelled', cancelledAt: String })
      const again = await asService(app, { method: 'POST', url: `/api/bookings/${booked._id}/cancel`, headers: { 'content-type': 'application/json' }, payload: '{}' })
      t.equal(again.statusCode, 200)
      t.same(again.json().data, cancel.json().data)
      t.equal((await app.inject(`/api/events/${eventId}`)).json().data.sections[0].remaining, 2)
      t.equal((await book(app, { eventId, sectionId: sectionIds[0], qty: 1, userId: 'd' })).statusCode, 201, 'freed seats sell at once')
    })

    t.test('events list pages with total', async t => {
      await createEvent(app, [1])
      const page = await app.inject('/api/events?page=1&limit=2')
      t.equal(page.statusCode, 200)
      t.ok(page.json().data.total >= 1)
      t.ok(page.json().data.items.length <= 2)
    })

    t.test('OpenAPI document and Swagger UI', async t => {
      const doc = await app.inject('/docs/json')
      t.equal(doc.statusCode, 200)
      const spec = doc.json()
      t.match(spec.openapi, /^3\./)
      for (const path of ['/api/events', '/api/events/{id}', '/bookings', '/api/bookings', '/api/bookings/{id}', '/api/bookings/{id}/confirm', '/api/bookings/{id}/cancel', '/health', '/health/ready', '/metrics']) {
        t.ok(spec.paths[path], `documents ${path}`)
      }
      for (const name of ['Event', 'Section', 'EventPage', 'Booking', 'BookingPage', 'BookingInput', 'EventInput', 'Error']) {
        t.ok(spec.components.schemas[name], `component ${name}`)
      }
      const post = spec.paths['/bookings'].post
      t.equal(post.operationId, 'createBookingAlias')
      t.equal(spec.paths['/api/bookings'].post.operationId, 'createBooking')
      t.same(Object.keys(post.responses).sort(), ['201', '400', '401', '403', '404', '408', '409', '413', '415', '422', '429', '431', '500', '503'])
      t.same(Object.keys(post.responses['201'].headers).sort(), ['Idempotent-Replayed', 'Location', 'X-RateLimit-Limit', 'X-RateLimit-Remaining', 'X-RateLimit-Reset'])
      t.same(post.responses['409'].content['application/json'].schema.allOf[1].properties.error.properties.code.enum, ['SOLD_OUT', 'LIMIT_EXCEEDED', 'SALE_NOT_OPEN', 'SALE_CLOSED'], '409 lists its codes')
      t.same(Object.keys(post.responses['404'].content['application/json'].examples), ['NOT_FOUND'], 'the 404 example is a NOT_FOUND')
      t.same(post.requestBody.content['application/json'].schema, { $ref: '#/components/schemas/BookingInput' })
      t.same(spec.components.schemas.BookingInput.required.sort(), ['eventId', 'qty', 'sectionId'], 'userId is optional: a customer books as itself')
      t.ok(post.parameters.some((p: { name: string, in: string }) => p.name === 'idempotency-key' && p.in === 'header'))
      for (const path of ['/api/events', '/bookings']) {
        const paging = spec.paths[path].get.parameters.filter((p: { name: string }) => p.name === 'page' || p.name === 'limit')
        t.same(paging.map((p: { required: boolean }) => p.required), [false, false], `${path}: page and limit are optional`)
      }
      t.equal(spec.paths['/api/bookings/{id}/confirm'].post.requestBody.required, false, 'a confirm may send no body')
      t.ok(spec.paths['/api/events/{id}'].get.responses['414'], '414 on :id routes')
      t.same(spec.paths['/api/events'].get.security, [{}, { bearerAuth: [] }], 'public reads need no token (one sent says who asks)')
      t.equal((await app.inject('/docs')).statusCode < 400, true)
    })

    t.test('a 201 carries Location; too-long ids and other media types answer in the envelope', async t => {
      const created = await injectAs(app, as.organizer, { method: 'POST', url: '/api/events', payload: { name: 'Located', sections: [{ name: 'A', price: 1, capacity: 2 }] } })
      t.equal(created.statusCode, 201)
      t.equal(created.headers.location, `/api/events/${created.json().data._id}`)
      const [section] = created.json().data.sections
      const booked = await book(app, { eventId: created.json().data._id, sectionId: section._id, qty: 1, userId: 'located' }, { 'idempotency-key': 'located-1' })
      t.equal(booked.headers.location, `/api/bookings/${booked.json().data._id}`)
      const replayed = await book(app, { eventId: created.json().data._id, sectionId: section._id, qty: 1, userId: 'located' }, { 'idempotency-key': 'located-1' })
      t.equal(replayed.headers['idempotent-replayed'], 'true')
      t.equal(replayed.headers.location, booked.headers.location, 'a replay points at the original booking')
      for (const url of [`/api/events/${'a'.repeat(101)}`, `/api/bookings/${'a'.repeat(101)}`]) {
        const long = await asService(app, url)
        t.equal(long.statusCode, 414, url.slice(0, 20))
        t.same(long.json(), { success: false, error: { code: 'URI_TOO_LONG', message: 'A path parameter is over 100 characters' } })
      }
      const badUrl = await app.inject('/api/events/%zz')
      t.equal(badUrl.statusCode, 400)
      t.equal(badUrl.json().error.code, 'BAD_REQUEST')
      const text = await injectAs(app, as.organizer, { method: 'POST', url: '/api/events', headers: { 'content-type': 'text/plain' }, payload: JSON.stringify({ name: 'X', sections: [{ name: 'A', price: 1, capacity: 1 }] }) })
      t.equal(text.statusCode, 415, 'JSON sent as text/plain is refused, not parsed')
      t.equal(text.json().error.code, 'UNSUPPORTED_MEDIA_TYPE')
    })

    t.test('bookings survive a restart of the app', async t => {
      const { eventId, sectionIds } = await createEvent(app, [3])
      const booked = (await book(app, { eventId, sectionId: sectionIds[0], qty: 2, userId: 'durable' })).json().data
      await app.close()
      const reopened = await buildApp(t, env)
      t.same((await asService(reopened, `/api/bookings/${booked._id}`)).json().data, booked)
      t.equal((await reopened.inject(`/api/events/${eventId}`)).json().data.sections[0].remaining, 1)
    })
  })
}
