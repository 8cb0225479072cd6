/**
 * GET /metrics after real traffic: the seed's race (20 users, 5 seats) on every
 * store set-up, read back through a strict parser of the text exposition format.
 */
import { readFileSync } from 'node:fs'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { buildApp } from '../helpers/build-app.ts'
import { createEvent as createEventVia } from '../helpers/create-event.ts'
import { injectAs, injectClient } from '../helpers/http-client.ts'
import { one, parseExposition, total, type Exposition } from '../helpers/prometheus-text.ts'
import { missing } from '../helpers/services.ts'
import { STORE_SETUPS, storeSetup } from '../helpers/store-setups.ts'
import { principals } from '../helpers/tokens.ts'

// an organizer creates the events; a service books on behalf of the test's users and sees every booking
const as = await principals()

// ---------------------------------------------------------------------------

const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

async function scrape (app: FastifyInstance): Promise<{ text: string, exposition: Exposition, contentType: unknown }> {
  const res = await app.inject({ method: 'GET', url: '/metrics' })
  if (res.statusCode !== 200) throw new Error(`GET /metrics answered ${res.statusCode}: ${res.body}`)
  return { text: res.body, exposition: parseExposition(res.body), contentType: res.headers['content-type'] }
}

const createEvent = async (app: FastifyInstance, capacity: number) =>
  await createEventVia(injectClient(app, as.organizer), [capacity], { name: 'Metrics concert', price: 50, sectionNames: ['Floor'] })

t.test('the parser reads what it should and refuses what it should not', async t => {
  const parsed = parseExposition([
    '# HELP x_total a "counter"',
    '# TYPE x_total counter',
    'x_total{a="1",b="q\\"uo\\\\te\\n"} 3',
    'x_total 4.5 1700000000000',
    'h_bucket{le="+Inf"} +Inf',
    ''
  ].join('\n'))
  t.equal(parsed.types.get('x_total'), 'counter')
  t.same(parsed.samples[0].labels, { a: '1', b: 'q"uo\\te\n' })
  t.equal(one(parsed, 'x_total', { a: '1' }), 3)
  t.equal(total(parsed, 'x_total'), 7.5)
  t.equal(one(parsed, 'h_bucket', { le: '+Inf' }), Infinity)
  t.throws(() => one(parsed, 'x_total'), /found 2/)
  t.throws(() => parseExposition('x_total{a="1"'), /unterminated|expected/)
  t.throws(() => parseExposition('x_total{a=1} 1'), /expected =/)
  t.throws(() => parseExposition('x_total abc'), /bad sample value/)
  t.throws(() => parseExposition('x_total'), /bad sample/)
})

for (const setup of STORE_SETUPS) {
  const skip = await missing(...setup.needs)
  if (skip !== undefined) console.log(`# SKIPPED metrics on ${setup.name}: ${skip}`)

  t.test(`metrics after the seed's race on ${setup.name}`, { skip }, async t => {
    const app = await buildApp(t, await setup.env(t))
    const { eventId, sectionId } = await createEvent(app, 5)

    const responses = await Promise.all(Array.from({ length: 20 }, async (_, i) => await injectAs(app, as.service, {
      method: 'POST',
      url: '/bookings',
      payload: { eventId, sectionId, qty: 1, userId: `race-user-${i}` }
    })))
    const statuses = responses.map(r => r.statusCode)
    t.equal(statuses.filter(s => s === 201).length, 5, '5 bookings confirmed')
    t.equal(statuses.filter(s => s === 409).length, 15, '15 refused as sold out')
    t.same(statuses.filter(s => s !== 201 && s !== 409), [], 'no other answer')

    const { exposition: m, contentType, text } = await scrape(app)
    t.equal(contentType, CONTENT_TYPE, 'Prometheus text format 0.0.4')

    t.equal(one(m, 'bookings_total', { outcome: 'confirmed' }), 5)
    t.equal(one(m, 'bookings_total', { outcome: 'sold_out' }), 15)
    for (const outcome of ['limit', 'busy', 'replayed', 'invalid', 'denied', 'error']) {
      t.equal(one(m, 'bookings_total', { outcome }), 0, `outcome ${outcome} exported at 0`)
    }
    t.equal(one(m, 'booked_seats_total'), 5)

    const batches = one(m, 'booking_batch_size_count')
    const batched = one(m, 'booking_batch_size_sum')
    t.ok(batches >= 1, `at least one batch (${batches})`)
    // every confirmed booking went through a batch; sold-out answers may come from memory
    t.ok(batched >= 5 && batched <= 20, `5..20 requests reached a batch (${batched})`)
    t.ok(batches <= batched, 'no empty batch was observed')
    t.equal(one(m, 'booking_batch_size_bucket', { le: '+Inf' }), batches, '+Inf bucket equals the count')
    t.equal(one(m, 'booking_queue_depth'), 0, 'nothing left queued')

    t.equal(one(m, 'http_request_duration_seconds_count', { method: 'POST', route: '/bookings', status_code: '201' }), 5)
    t.equal(one(m, 'http_request_duration_seconds_count', { method: 'POST', route: '/bookings', status_code: '409' }), 15)
    t.equal(one(m, 'http_request_duration_seconds_count', { method: 'POST', route: '/api/events', status_code: '201' }), 1)

    t.ok(one(m, 'lock_acquire_seconds_count') >= 1, 'lock acquisitions timed')
    t.equal(total(m, 'lock_failures_total'), 0, 'no lock failure')
    t.ok(total(m, 'store_transaction_seconds_count', { operation: 'book' }) >= 1, 'book transactions timed')
    const storeKind = setup.name.split('+')[0]
    t.ok(one(m, 'store_transaction_seconds_count', { store: storeKind, operation: 'book' }) >= 1, `store label is ${storeKind}`)
    t.equal(total(m, 'store_errors_total'), 0, 'no store error')

    t.equal(m.types.get('bookings_total'), 'counter')
    t.equal(m.types.get('http_request_duration_seconds'), 'histogram')
    t.equal(m.types.get('booking_queue_depth'), 'gauge')
    t.ok(m.types.has('process_cpu_user_seconds_total'), 'default process metrics exported')
    t.notOk(text.includes(eventId) || text.includes(sectionId), 'no id in the exposition')
  })

  t.test(`booking outcomes "invalid" and "replayed" on ${setup.name}`, { skip }, async t => {
    const app = await buildApp(t, await setup.env(t))
    const { eventId, sectionId } = await createEvent(app, 10)

    const invalid = await injectAs(app, as.service, { method: 'POST', url: '/bookings', payload: { eventId, sectionId, qty: 0, userId: 'u1' } })
    t.equal(invalid.statusCode, 400)
    const unknownField = await injectAs(app, as.service, { method: 'POST', url: '/api/bookings', payload: { eventId, sectionId, qty: 1, userId: 'u1', admin: true } })
    t.equal(unknownField.statusCode, 400)

    const body = { eventId, sectionId, qty: 2, userId: 'retrying-user' }
    const headers = { 'idempotency-key': 'metrics-retry-1' }
    const first = await injectAs(app, as.service, { method: 'POST', url: '/bookings', headers, payload: body })
    t.equal(first.statusCode, 201)
    const retry = await injectAs(app, as.service, { method: 'POST', url: '/bookings', headers, payload: body })
    t.equal(retry.statusCode, 201)
    t.equal(retry.headers['idempotent-replayed'], 'true')
    t.equal(retry.json().data._id, first.json().data._id, 'the retry returns the original booking')

    const { exposition: m } = await scrape(app)
    t.equal(one(m, 'bookings_total', { outcome: 'invalid' }), 2, 'validation failures counted as invalid')
    t.equal(one(m, 'bookings_total', { outcome: 'replayed' }), 1, 'the retry counted as replayed')
    t.equal(one(m, 'bookings_total', { outcome: 'confirmed' }), 1, 'the retry is not a second sale')
    t.equal(one(m, 'booked_seats_total'), 2, 'seats counted once')
    t.equal(one(m, 'http_request_duration_seconds_count', { method: 'POST', route: '/bookings', status_code: '400' }), 1)
    t.equal(one(m, 'http_request_duration_seconds_count', { method: 'POST', route: '/api/bookings', status_code: '400' }), 1,
      'each spelling of the route keeps its own pattern label')
    t.equal(one(m, 'http_request_duration_seconds_count', { method: 'POST', route: '/bookings', status_code: '201' }), 2)
  })
}

t.test('two apps in one process do not share counters', async t => {
  const embedded = storeSetup('embedded')
  const a = await buildApp(t, await embedded.env(t))
  const b = await buildApp(t, await embedded.env(t))
  const { eventId, sectionId } = await createEvent(a, 3)
  const res = await injectAs(a, as.service, { method: 'POST', url: '/bookings', payload: { eventId, sectionId, qty: 1, userId: 'only-in-a' } })
  t.equal(res.statusCode, 201)

  const inA = (await scrape(a)).exposition
  const inB = (await scrape(b)).exposition
  t.equal(one(inA, 'bookings_total', { outcome: 'confirmed' }), 1, 'app A counted its booking')
  t.equal(one(inB, 'bookings_total', { outcome: 'confirmed' }), 0, 'app B did not')
  t.equal(one(inB, 'booked_seats_total'), 0)
  t.equal(total(inB, 'http_request_duration_seconds_count', { route: '/bookings' }), 0, 'app B saw no booking request')
  t.equal(total(inB, 'http_request_duration_seconds_count', { route: '/api/events' }), 0, 'app B saw no event request')
})

t.test('labels carry route patterns, never raw ids or URLs', async t => {
  const app = await buildApp(t, await storeSetup('embedded').env(t))
  const { eventId, sectionId } = await createEvent(app, 3)
  const booked = await injectAs(app, as.service, { method: 'POST', url: '/api/bookings', payload: { eventId, sectionId, qty: 1, userId: 'label-user-7f3a' } })
  t.equal(booked.statusCode, 201)
  const bookingId: string = booked.json().data._id

  t.equal((await app.inject({ method: 'GET', url: `/api/events/${eventId}` })).statusCode, 200)
  const missingId = 'abcdefabcdefabcdefabcdef'
  t.equal((await app.inject({ method: 'GET', url: `/api/events/${missingId}` })).statusCode, 404)
  t.equal((await injectAs(app, as.service, { method: 'GET', url: `/api/bookings/${bookingId}` })).statusCode, 200)
  t.equal((await injectAs(app, as.service, { method: 'GET', url: `/bookings?eventId=${eventId}&userId=label-user-7f3a` })).statusCode, 200)
  t.equal((await injectAs(app, as.service, { method: 'POST', url: `/api/bookings/${bookingId}/cancel` })).statusCode, 200)
  const unrouted = '/no-such-route/0123456789abcdef01234567'
  t.equal((await app.inject({ method: 'GET', url: unrouted })).statusCode, 404)

  const { text, exposition: m } = await scrape(app)
  for (const raw of [eventId, sectionId, bookingId, missingId, 'label-user-7f3a', 'no-such-route', '?']) {
    t.notOk(m.samples.some(s => Object.values(s.labels).some(v => v.includes(raw))), `no label contains ${raw}`)
  }
  t.notOk(text.includes(eventId) || text.includes(bookingId), 'no id anywhere in the exposition')
  t.equal(one(m, 'http_request_duration_seconds_count', { method: 'GET', route: '/api/events/:id', status_code: '200' }), 1)
  t.equal(one(m, 'http_request_duration_seconds_count', { method: 'GET', route: '/api/events/:id', status_code: '404' }), 1)
  t.equal(one(m, 'http_request_duration_seconds_count', { method: 'GET', route: '/api/bookings/:id', status_code: '200' }), 1)
  t.equal(one(m, 'http_request_duration_seconds_count', { method: 'POST', route: '/api/bookings/:id/cancel', status_code: '200' }), 1)
  t.equal(one(m, 'http_request_duration_seconds_count', { method: 'GET', route: '/bookings', status_code: '200' }), 1)
  const routes = new Set(m.samples.filter(s => s.name === 'http_request_duration_seconds_count').map(s => s.labels.route))
  for (const route of routes) t.ok(route === 'unmatched' || route.startsWith('/'), `route label ${route} is a pattern`)
  t.equal(one(m, 'cancelled_seats_total'), 1, 'the cancellation counted its seat')
})

t.test('docs and dashboard name only metrics the app exports, and the docs name all of them', async t => {
  const app = await buildApp(t, await storeSetup('embedded').env(t))
  const { exposition: m } = await scrape(app)
  // the service's own metrics: everything that is not a prom-client default
  const DEFAULT_PREFIXES = ['process_', 'nodejs_']
  const own = [...m.types.keys()].filter(name => !DEFAULT_PREFIXES.some(p => name.startsWith(p)))
  t.ok(own.length >= 11, `the service exports its own metrics (${own.join(', ')})`)

  const docs = readFileSync(new URL('../../docs/metrics.md', import.meta.url), 'utf8')
  for (const name of own) {
    t.match(docs, new RegExp(`^\\| \`${name}\` \\| ${m.types.get(name)} \\|`, 'm'), `docs/metrics.md has a table row for ${name} with its type`)
  }

  // a labelled metric has no sample before its first observation: go by the TYPE lines
  const exported = (name: string): boolean => m.types.has(name) ||
    /_(bucket|count|sum)$/.test(name) && m.types.get(name.replace(/_(bucket|count|sum)$/, '')) === 'histogram'
  const dashboard = JSON.parse(readFileSync(new URL('../../grafana/dashboards/booking.json', import.meta.url), 'utf8'))
  const exprs: string[] = dashboard.panels.flatMap((p: { targets?: Array<{ expr: string }> }) => (p.targets ?? []).map(q => q.expr))
  t.ok(exprs.length >= 8, 'the dashboard has queries')
  for (const expr of exprs) {
    // identifiers followed by { or ( or [ or whitespace that look like our metric names
    const names = (expr.match(/[a-z_]+(?:_total|_seconds_bucket|_seconds_count|_seconds_sum|_bucket|_depth|_count|_sum)\b/g) ?? [])
    t.ok(names.length > 0, `query names a metric: ${expr}`)
    for (const name of names) t.ok(exported(name), `${name} (in ${expr}) is exported`)
  }
})
