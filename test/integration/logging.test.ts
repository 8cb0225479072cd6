/**
 * Request logging: one JSON line per request with its id, route pattern, status
 * and duration; request ids honoured from x-request-id or generated; secrets
 * never written. Logs are captured from the app's own pino logger.
 */
import { Writable } from 'node:stream'
import Fastify, { type FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import t from 'tap'
import app, { appOptions } from '../../app.ts'
import type { TestContext } from '../helpers/context.ts'
import { createEvent } from '../helpers/create-event.ts'
import { pgliteDataDir } from '../helpers/databases.ts'
import { injectAs, injectClient } from '../helpers/http-client.ts'
import { principals, roleToken, withTestAuth } from '../helpers/tokens.ts'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

interface LogLine { msg?: string, reqId?: string, level: number, [key: string]: unknown }

interface Captured { app: FastifyInstance, raw: string[], lines: () => LogLine[] }

/** The app with production logger options (redaction included), its log lines captured. */
async function buildLoggedApp (t: TestContext, level = 'info', routes?: (app: FastifyInstance) => void): Promise<Captured> {
  const raw: string[] = []
  const stream = new Writable({
    write (chunk, _encoding, callback) {
      raw.push(...chunk.toString().split('\n').filter((l: string) => l !== ''))
      callback()
    }
  })
  // keep the app's own logger options (redact, ...), only send the lines to our stream
  const { transport: _transport, ...production } = appOptions().logger as Record<string, unknown>
  const fastify = Fastify(appOptions({ logger: { ...production, level, stream } }))
  await fastify.register(fp(app), { env: withTestAuth({ DATA_DIR: await pgliteDataDir(t), LOG_LEVEL: level }) })
  routes?.(fastify)
  t.teardown(async () => await fastify.close())
  await fastify.ready()
  return { app: fastify, raw, lines: () => raw.map(l => JSON.parse(l) as LogLine) }
}

// an organizer creates the events; a service books on behalf of the test's users
const as = await principals()

const requestLines = (lines: LogLine[], reqId: string): LogLine[] => lines.filter(l => l.reqId === reqId && l.msg === 'request')

t.test('an incoming x-request-id is echoed and logged as reqId', async t => {
  const { app, lines } = await buildLoggedApp(t)
  const res = await app.inject({ method: 'GET', url: '/health', headers: { 'x-request-id': 'trace-abc-123' } })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['x-request-id'], 'trace-abc-123', 'echoed in the response')
  const mine = requestLines(lines(), 'trace-abc-123')
  t.equal(mine.length, 1, 'exactly one request line carries it')
  t.equal(mine[0].route, '/health')
  t.equal(mine[0].statusCode, 200)
})

t.test('without x-request-id a UUID is generated, echoed and logged', async t => {
  const { app, lines } = await buildLoggedApp(t)
  const [first, second] = [await app.inject({ method: 'GET', url: '/health' }), await app.inject({ method: 'GET', url: '/health' })]
  const id = first.headers['x-request-id']
  t.match(id, UUID, 'a UUID')
  t.not(second.headers['x-request-id'], id, 'a new one per request')
  t.equal(requestLines(lines(), id as string).length, 1, 'the request line carries the generated id')
})

t.test('one line per request with route pattern, statusCode and durationMs', async t => {
  const { app, lines } = await buildLoggedApp(t)
  const created = await createEvent(injectClient(app, as.organizer), [1], { name: 'Logged', price: 5, sectionNames: ['A'], headers: { 'x-request-id': 'req-create' } })
  t.equal(created.status, 201)
  const { eventId, sectionId } = created

  const cases: Array<{ id: string, method: 'GET' | 'POST', url: string, payload?: object, route: string, status: number }> = [
    { id: 'req-get', method: 'GET', url: `/api/events/${eventId}`, route: '/api/events/:id', status: 200 },
    { id: 'req-book', method: 'POST', url: '/bookings', payload: { eventId, sectionId, qty: 1, userId: 'u-1' }, route: '/bookings', status: 201 },
    { id: 'req-soldout', method: 'POST', url: '/api/bookings', payload: { eventId, sectionId, qty: 1, userId: 'u-2' }, route: '/api/bookings', status: 409 },
    { id: 'req-invalid', method: 'POST', url: '/bookings', payload: { eventId, sectionId, qty: 99, userId: 'u-3' }, route: '/bookings', status: 400 },
    { id: 'req-missing', method: 'GET', url: '/api/events/0123456789abcdef01234567', route: '/api/events/:id', status: 404 },
    { id: 'req-unrouted', method: 'GET', url: '/not/a/route', route: 'unmatched', status: 404 }
  ]
  for (const c of cases) {
    const res = await injectAs(app, as.service, { method: c.method, url: c.url, payload: c.payload, headers: { 'x-request-id': c.id } })
    t.equal(res.statusCode, c.status, `${c.method} ${c.url} answers ${c.status}`)
  }

  const all = lines()
  for (const c of [{ id: 'req-create', method: 'POST', url: '/api/events', route: '/api/events', status: 201 }, ...cases]) {
    const mine = requestLines(all, c.id)
    t.equal(mine.length, 1, `one request line for ${c.id}`)
    const line = mine[0]
    if (line === undefined) continue
    t.equal(line.method, c.method)
    t.equal(line.route, c.route, `route pattern ${c.route}`)
    t.equal(line.url, c.url, 'the raw url is kept in its own field')
    t.equal(line.statusCode, c.status)
    t.type(line.durationMs, 'number')
    t.ok((line.durationMs as number) >= 0, 'durationMs is not negative')
    t.equal(line.level, 30, 'at info level')
  }
  const requestCount = all.filter(l => l.msg === 'request').length
  t.equal(requestCount, cases.length + 1, 'no request logged twice, none missed')
  t.ok(all.filter(l => l.msg !== 'request' && typeof l.reqId === 'string').every(l => all.some(r => r.msg === 'request' && r.reqId === l.reqId)),
    'every other line bound to a request shares its reqId with that request\'s line')
  const booked = all.find(l => l.reqId === 'req-book' && l.msg === 'booking')
  t.equal(booked?.outcome, 'confirmed', 'the booking line carries its outcome and the same reqId')
})

t.test('at LOG_LEVEL warn a request writes no line of its own, and what it logs at warn carries its reqId', async t => {
  // a route of the test's own, logging the way routes and plugins do
  const { app, lines } = await buildLoggedApp(t, 'warn', app => {
    app.get('/test-log', async (request) => {
      request.log.info({ skipped: true }, 'below the level')
      request.log.warn({ detail: 1 }, 'a warning')
      request.log.child({ part: 'inner' }).error('from a child')
      return { ok: true }
    })
  })
  await app.inject({ method: 'GET', url: '/health', headers: { 'x-request-id': 'quiet-1' } })
  const res = await app.inject({ method: 'GET', url: '/test-log', headers: { 'x-request-id': 'loud-1' } })
  t.equal(res.statusCode, 200)
  t.same(lines().filter(l => l.reqId === 'quiet-1'), [], 'no line for a request that logs nothing at warn')
  const mine = lines().filter(l => l.reqId === 'loud-1')
  t.same(mine.map(l => l.msg), ['a warning', 'from a child'], 'the warn and error lines only, in order')
  t.equal(mine[0].detail, 1)
  t.equal(mine[0].level, 40)
  t.equal(mine[1].part, 'inner', "the child's own bindings")
  t.equal(mine[1].level, 50)
  t.notOk(lines().some(l => l.msg === 'below the level' || l.msg === 'request'), 'nothing below warn')
})

t.test('an Authorization header value never reaches the logs', async t => {
  // trace: the most verbose level, every line the app can write
  const { app, raw } = await buildLoggedApp(t, 'trace')
  // a valid token (an admin's: it creates the event and books), so the requests get past authentication
  const token = await roleToken('admin')
  const cookie = 'session=c00kie-value-77aa'
  const headers = { authorization: `Bearer ${token}`, cookie }
  const created = await createEvent(injectClient(app), [1], { name: 'Auth', price: 1, sectionNames: ['A'], headers })
  t.equal(created.status, 201)
  const booking = { eventId: created.eventId, sectionId: created.sectionId, qty: 1, userId: 'u' }
  const statuses = [
    (await app.inject({ method: 'POST', url: '/bookings', headers, payload: booking })).statusCode,
    (await app.inject({ method: 'POST', url: '/bookings', headers, payload: booking })).statusCode,
    (await app.inject({ method: 'POST', url: '/bookings', headers, payload: { ...booking, qty: 'x' } })).statusCode,
    (await app.inject({ method: 'POST', url: '/bookings', headers: { ...headers, 'content-type': 'application/json' }, payload: '{bad json' })).statusCode,
    (await app.inject({ method: 'GET', url: '/health/ready', headers })).statusCode,
    (await app.inject({ method: 'GET', url: '/nowhere', headers })).statusCode
  ]
  t.same(statuses, [201, 409, 400, 400, 200, 404])
  t.ok(raw.length >= 7, `lines were written (${raw.length})`)
  const joined = raw.join('\n')
  t.notOk(joined.includes(token), 'the token is not in any line')
  t.notOk(joined.includes(token.split('.')[2]), 'nor its signature')
  t.notOk(joined.includes('c00kie-value-77aa'), 'the cookie is not in any line')
})

t.test('connection strings in the configuration are redacted', async t => {
  const { app, raw } = await buildLoggedApp(t)
  // the redaction paths of appOptions apply to any line logging the config
  app.log.info({ config: { ...app.config, DATABASE_URL: 'postgres://admin:pw-9f8e7d@db.internal/x', REDIS_NODES: 'redis://:rpw-1a2b@r1:6379' } }, 'config')
  const joined = raw.join('\n')
  t.match(joined, /"msg":"config"/)
  t.notOk(joined.includes('pw-9f8e7d'), 'no database password')
  t.notOk(joined.includes('rpw-1a2b'), 'no Redis password')
})
