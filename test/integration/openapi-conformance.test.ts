/**
 * Conformance: requests generated from the published document (fast-check,
 * fixed seed), valid and invalid, over every operation, against the app on a
 * real store (every store set-up; with Redis, the rate limit on too). Every
 * answer's status must be declared for its operation, its
 * body valid against the declared schema and its declared headers against
 * theirs; no 5xx; input the document calls invalid gets a 4xx in the
 * envelope; the booking invariant holds afterwards for every event.
 * FUZZ_SEED and FUZZ_RUNS (requests per operation and kind) change the run.
 */
import fc from 'fast-check'
import type { FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import { encodeCursor } from '../../lib/domain/list-cursor.ts'
import { buildApp } from '../helpers/build-app.ts'
import { injectClient } from '../helpers/http-client.ts'
import { checkViaApi } from '../helpers/invariant.ts'
import { BODY_LIMIT, documentChecks, operationsOf, type Operation, type RequestParts } from '../helpers/openapi-operations.ts'
import { arbitraryOf, type JsonSchema } from '../helpers/schema-arbitrary.ts'
import { missing } from '../helpers/services.ts'
import { STORE_SETUPS, storeSetup } from '../helpers/store-setups.ts'
import { bearer, roleHeaders } from '../helpers/tokens.ts'

const SEED = Number(process.env.FUZZ_SEED ?? 20261127)
const RUNS = Number(process.env.FUZZ_RUNS ?? 30)
/** a path id replaced, when sent, by the id of the newest booking answered 201 */
const LATEST_BOOKING = '<latest-booking>'

const PRINCIPALS: Record<string, Record<string, string>> = {
  none: {},
  garbage: bearer('not.a.token'),
  bob: await roleHeaders('customer', 'bob'),
  eve: await roleHeaders('customer', 'eve'),
  alice: await roleHeaders('organizer', 'alice'),
  oscar: await roleHeaders('organizer', 'oscar'),
  service: await roleHeaders('service'),
  admin: await roleHeaders('admin')
}
// mostly principals that may do things, so requests reach past 401 and 403
const PRINCIPAL = fc.constantFrom('none', 'garbage', 'bob', 'bob', 'bob', 'eve', 'alice', 'alice', 'oscar', 'service', 'service', 'service', 'admin', 'admin')

interface Known { events: string[], sections: string[], bookings: string[], sectionsOf: Record<string, string[]> }

interface FuzzRequest extends RequestParts {
  op: Operation
  principal: string
  /** the mutation applied to a valid request, if any */
  mutation?: string
}

/** Events, sections and bookings of every state the requests can meet: confirmed, held, expired hold, cancelled, sold out. */
async function seed (app: FastifyInstance): Promise<Known> {
  const alice = injectClient(app, PRINCIPALS.alice)
  const service = injectClient(app, PRINCIPALS.service)
  const ok = <T>(res: { status: number, text: string, body: { data?: T } }): T => {
    if (res.status >= 300 || res.body.data === undefined) throw new Error(`seeding answered ${res.status}: ${res.text}`)
    return res.body.data
  }
  const main = ok<{ _id: string, sections: Array<{ _id: string }> }>(await alice.request('POST', '/api/events', {
    name: 'Fuzzed', maxPerUser: 30, sections: [{ name: 'Small', price: 10, capacity: 2 }, { name: 'Big', price: 25.5, capacity: 400 }]
  }))
  const brief = ok<{ _id: string, sections: Array<{ _id: string }> }>(await alice.request('POST', '/api/events', {
    name: 'Brief holds', holdSeconds: 1, sections: [{ name: 'Floor', price: 5, capacity: 50 }]
  }))
  const [small, big] = main.sections.map(s => s._id)
  const book = async (body: object): Promise<string> => ok<{ _id: string }>(await service.request('POST', '/bookings', body))._id
  const bookings = [
    await book({ eventId: main._id, sectionId: small, qty: 2, userId: 'bob' }), // sells Small out
    await book({ eventId: main._id, sectionId: big, qty: 1, userId: 'bob' }),
    await book({ eventId: main._id, sectionId: big, qty: 2, userId: 'bob', hold: true }),
    await book({ eventId: main._id, sectionId: big, qty: 1, userId: 'eve' }),
    await book({ eventId: brief._id, sectionId: brief.sections[0]._id, qty: 1, userId: 'bob', hold: true }) // expires in a second
  ]
  const cancelled = await book({ eventId: main._id, sectionId: big, qty: 1, userId: 'eve' })
  ok(await service.request('POST', `/api/bookings/${cancelled}/cancel`))
  await new Promise(resolve => setTimeout(resolve, 1100))
  return {
    events: [main._id, brief._id],
    sections: [small, big, brief.sections[0]._id],
    bookings: [...bookings, cancelled],
    sectionsOf: { [main._id]: [small, big], [brief._id]: [brief.sections[0]._id] }
  }
}

/** Mostly one of `known`, sometimes anything the schema allows. */
function knownOr (known: readonly unknown[], other: fc.Arbitrary<unknown>): fc.Arbitrary<unknown> {
  return fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...known) }, { weight: 1, arbitrary: other })
}

/** Valid requests of one operation, by its document. */
function validRequests (op: Operation, document: JsonSchema, known: Known): fc.Arbitrary<FuzzRequest> {
  const resolve = (ref: string): JsonSchema => ref.split('/').slice(1).reduce((node: JsonSchema, key) => node[key], document)
  const named = {
    eventId: knownOr(known.events, arbitraryOf({ type: 'string', pattern: '^[0-9a-f]{24}$' }, { resolve })),
    sectionId: knownOr(known.sections, arbitraryOf({ type: 'string', pattern: '^[0-9a-f]{24}$' }, { resolve })),
    userId: knownOr(['bob', 'eve', 'carol'], arbitraryOf({ type: 'string', pattern: '^[\\x21-\\x7E]{1,16}$' }, { resolve })),
    'idempotency-key': knownOr(['order-1', 'order-2'], arbitraryOf({ type: 'string', pattern: '^[\\x20-\\x7E]{1,32}$' }, { resolve })),
    qty: fc.integer({ min: 1, max: 3 }),
    // mostly a real cursor (one past every item: the whole list), so list requests get past 400
    cursor: knownOr([encodeCursor({ createdAt: '2100-01-01T00:00:00.000Z', _id: '0'.repeat(24) })], arbitraryOf({ type: 'string', pattern: '^[A-Za-z0-9_-]{1,40}$' }, { resolve }))
  }
  const options = { resolve, named }
  const place = (where: 'path' | 'query' | 'header'): fc.Arbitrary<Record<string, string>> => {
    const params = op.parameters.filter(p => p.in === where)
    const model = Object.fromEntries(params.map(p => {
      if (where === 'path') {
        const ids = op.path.startsWith('/api/events') ? known.events : [...known.bookings, LATEST_BOOKING]
        return [p.name, knownOr(ids, arbitraryOf(p.schema, options))]
      }
      return [p.name, named[p.name as keyof typeof named] ?? arbitraryOf(p.schema, options)]
    }))
    return fc.record(model, { requiredKeys: params.filter(p => p.required === true || where === 'path').map(p => p.name) })
      .map(values => Object.fromEntries(Object.entries(values).map(([k, v]) => [k, String(v)])))
  }
  // mostly a section of the event named, so bookings get past 404
  const coherent = (schema: JsonSchema): fc.Arbitrary<RequestParts['body']> => fc.tuple(arbitraryOf(schema, options), fc.nat(), fc.boolean())
    .map(([json, n, keep]) => {
      if (keep || typeof json !== 'object' || json === null || !('eventId' in json) || !('sectionId' in json)) return { json }
      const sections = known.sectionsOf[String(json.eventId)]
      return { json: sections === undefined ? json : { ...json, sectionId: sections[n % sections.length] } }
    })
  const body: fc.Arbitrary<RequestParts['body']> = op.body === undefined
    ? fc.constant(undefined)
    : op.body.required ? coherent(op.body.schema) : fc.option(coherent(op.body.schema), { nil: undefined })
  return fc.record({ principal: PRINCIPAL, path: place('path'), query: place('query'), headers: place('header'), body, byCursor: fc.boolean() })
    .map(({ byCursor, ...parts }) => ({ op, ...parts, query: pageOrCursor(parts.query, byCursor) }))
}

/** A list's page is asked for by number or by cursor: both is a 400 the document cannot say, so a valid request keeps one. */
function pageOrCursor (query: Record<string, string>, byCursor: boolean): Record<string, string> {
  if (query.page === undefined || query.cursor === undefined) return query
  const { page, cursor, ...rest } = query
  return byCursor ? { ...rest, cursor } : { ...rest, page }
}

type Mutation = (request: FuzzRequest, n: number) => FuzzRequest

/** Ways to spoil a valid request, each kept to the operations it applies to. */
function mutationsOf (op: Operation): Array<[string, Mutation]> {
  const mutations: Array<[string, Mutation]> = []
  const jsonBody = (request: FuzzRequest): Record<string, unknown> => {
    const body = request.body !== undefined && 'json' in request.body ? request.body.json : undefined
    return typeof body === 'object' && body !== null && !Array.isArray(body) ? { ...body } : {}
  }
  const pick = <T>(items: readonly T[], n: number): T => items[n % items.length]
  if (op.body !== undefined) {
    mutations.push(
      ['body: a required field left out', (r, n) => {
        const json = jsonBody(r)
        const required = Object.keys(json)
        if (required.length > 0) delete json[pick(required, n)]
        return { ...r, body: { json } }
      }],
      ['body: an unknown field', (r) => ({ ...r, body: { json: { ...jsonBody(r), admin: true } } })],
      ['body: a field of the wrong type', (r, n) => {
        const json = jsonBody(r)
        const keys = Object.keys(json)
        if (keys.length > 0) json[pick(keys, n)] = pick(['2', {}, [], null, true, -1.5, 'x'.repeat(300)], n >> 3)
        return { ...r, body: { json } }
      }],
      ['body: not an object', (r, n) => ({ ...r, body: { json: pick([[], null, 'text', 42], n) } })]
    )
  }
  if (op.method === 'POST') {
    mutations.push(
      ['body: not JSON', (r, n) => ({ ...r, body: { raw: pick(['{"eventId":', '{]', 'nul'], n), contentType: 'application/json' } })],
      ['body: JSON as text/plain', (r) => ({ ...r, body: { raw: JSON.stringify(jsonBody(r)), contentType: 'text/plain' } })],
      ['body: over the size limit', (r) => ({ ...r, body: { raw: JSON.stringify({ ...jsonBody(r), padding: 'x'.repeat(BODY_LIMIT) }), contentType: 'application/json' } })]
    )
  }
  const query = op.parameters.filter(p => p.in === 'query')
  if (query.length > 0) {
    mutations.push(
      ['query: a value out of range or of the wrong type', (r, n) => ({ ...r, query: { ...r.query, [pick(query, n).name]: pick(['0', '1000001', 'abc', '-1', '1.5', ''], n >> 3) } })],
      ['query: an unknown field', (r) => ({ ...r, query: { ...r.query, evil: '1' } })]
    )
  }
  if (op.parameters.some(p => p.in === 'path')) {
    mutations.push(['path: a malformed id', (r, n) => ({ ...r, path: { id: pick(['abc', 'g'.repeat(24), 'a'.repeat(101), '%zz', 'ABCDEF0123456789abcdef0'], n) } })])
  }
  if (op.parameters.some(p => p.in === 'header')) {
    mutations.push(['header: an Idempotency-Key too long', (r) => ({ ...r, headers: { ...r.headers, 'idempotency-key': 'k'.repeat(256) } })])
  }
  return mutations
}

function invalidRequests (op: Operation, valid: fc.Arbitrary<FuzzRequest>): fc.Arbitrary<FuzzRequest> | undefined {
  const mutations = mutationsOf(op)
  if (mutations.length === 0) return undefined
  return fc.tuple(valid, fc.constantFrom(...mutations), fc.nat()).map(([request, [name, mutate], n]) => ({ ...mutate(request, n), mutation: name }))
}

interface Outcome { request: FuzzRequest, status: number, invalid?: string, violation?: string }

async function send (app: FastifyInstance, request: FuzzRequest): Promise<{ status: number, headers: Record<string, string>, text: string }> {
  const path = request.op.path.replace(/\{(\w+)\}/g, (_, name: string) => request.path[name])
  const query = new URLSearchParams(request.query).toString()
  const body = request.body
  const res = await app.inject({
    method: request.op.method as 'GET' | 'POST',
    url: query === '' ? path : `${path}?${query}`,
    headers: {
      ...PRINCIPALS[request.principal],
      ...request.headers,
      ...(body === undefined ? {} : { 'content-type': 'raw' in body ? body.contentType : 'application/json' })
    },
    ...(body === undefined ? {} : { payload: 'raw' in body ? body.raw : JSON.stringify(body.json) })
  })
  const headers = Object.fromEntries(Object.entries(res.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : String(v)]))
  return { status: res.statusCode, headers, text: res.body }
}

/** Headers the document promises on every answer of a status. */
const ALWAYS: Record<number, string[]> = { 201: ['location'], 401: ['www-authenticate'], 429: ['retry-after'], 503: ['retry-after'] }

async function conformance (t: Test, env: Record<string, string>, label: string): Promise<void> {
  const app = await buildApp(t, env)
  const document = (await app.inject('/docs/json')).json()
  const operations = operationsOf(document)
  const checks = documentChecks(document)
  const known = await seed(app)

  const requests: FuzzRequest[] = []
  for (const [i, op] of operations.entries()) {
    const valid = validRequests(op, document, known)
    requests.push(...fc.sample(valid, { seed: SEED + i, numRuns: RUNS }))
    const invalid = invalidRequests(op, valid)
    if (invalid !== undefined) requests.push(...fc.sample(invalid, { seed: SEED + 1000 + i, numRuns: RUNS }))
  }
  const [order] = fc.sample(fc.shuffledSubarray(requests, { minLength: requests.length }), { seed: SEED, numRuns: 1 })

  const outcomes: Outcome[] = []
  let latest: string | undefined
  for (const generated of order) {
    const request = { ...generated, path: Object.fromEntries(Object.entries(generated.path).map(([k, v]) => [k, v === LATEST_BOOKING ? latest ?? known.bookings[0] : v])) }
    const invalid = checks.requestProblem(request.op, request)
    const answer = await send(app, request)
    const problems = [checks.answerProblem(request.op, answer.status, answer.headers, answer.text)]
    if (answer.status >= 500) problems.push(`a ${answer.status}`)
    if (invalid !== undefined && (answer.status < 400 || answer.status >= 500)) problems.push(`invalid input (${invalid}) answered ${answer.status}`)
    for (const name of ALWAYS[answer.status] ?? []) {
      if (answer.headers[name] === undefined && request.op.responses[String(answer.status)]?.headers !== undefined) problems.push(`${answer.status} without ${name}`)
    }
    if (answer.status === 201 && request.op.path.endsWith('bookings')) {
      const id: string = JSON.parse(answer.text).data._id
      latest = id
      if (answer.headers.location !== `/api/bookings/${id}`) problems.push(`201 Location ${answer.headers.location} is not /api/bookings/${id}`)
    }
    const violation = problems.filter(p => p !== undefined).join('; ')
    outcomes.push({ request, status: answer.status, invalid, ...(violation === '' ? {} : { violation }) })
  }

  // the invariant, for every event (the fuzz created some)
  const admin = injectClient(app, PRINCIPALS.admin)
  const events: string[] = []
  for (let page = 1; ; page++) {
    const res = await admin.request<{ items: Array<{ _id: string }> }>('GET', `/api/events?page=${page}&limit=100`)
    events.push(...(res.body.data?.items ?? []).map(e => e._id))
    if ((res.body.data?.items.length ?? 0) < 100) break
  }
  const invariantProblems = (await Promise.all(events.map(async id => (await checkViaApi(admin, id)).problems))).flat()

  const violations = outcomes.filter(o => o.violation !== undefined)
  const covered = new Set(outcomes.map(o => o.request.op.operationId))
  const statuses = new Map<number, number>()
  for (const o of outcomes) statuses.set(o.status, (statuses.get(o.status) ?? 0) + 1)
  const invalidCount = outcomes.filter(o => o.invalid !== undefined).length
  const declared = operations.flatMap(op => Object.keys(op.responses).map(status => `${op.operationId} ${status}`))
  const answered = new Set(outcomes.map(o => `${o.request.op.operationId} ${o.status}`))
  t.comment(`conformance on ${label}: seed ${SEED}, ${covered.size} of ${operations.length} operations covered, ${outcomes.length} requests ` +
    `(${outcomes.length - invalidCount} valid, ${invalidCount} invalid by the document), violations: ${violations.length}; ` +
    `statuses ${[...statuses].sort(([a], [b]) => a - b).map(([s, n]) => `${s}: ${n}`).join(', ')} (${answered.size} of the ${declared.length} declared ` +
    `operation-status pairs seen); invariant checked on ${events.length} events`)
  for (const op of operations) {
    const mine = outcomes.filter(o => o.request.op === op)
    const counts = new Map<number, number>()
    for (const o of mine) counts.set(o.status, (counts.get(o.status) ?? 0) + 1)
    t.comment(`  ${op.operationId}: ${mine.length} requests, ${[...counts].sort(([a], [b]) => a - b).map(([s, n]) => `${s}×${n}`).join(' ')}`)
  }
  for (const v of violations.slice(0, 20)) {
    t.comment(`  ${v.request.op.method} ${v.request.op.path} as ${v.request.principal}${v.request.mutation === undefined ? '' : ` (${v.request.mutation})`}: ${v.violation}`)
  }
  t.equal(covered.size, operations.length, 'every operation was exercised')
  t.same(violations.map(v => `${v.request.op.operationId}: ${v.violation ?? ''}`), [], 'every answer is one the document declares')
  t.ok(outcomes.some(o => o.invalid === undefined && o.status < 300) && invalidCount > 0, 'both valid and invalid requests were sent, some succeeded')
  t.same(invariantProblems, [], 'the invariant holds afterwards')
}

t.test('the checks catch what the document does not declare', async t => {
  const app = await buildApp(t, await storeSetup('embedded').env(t))
  const document = (await app.inject('/docs/json')).json()
  const checks = documentChecks(document)
  const op = operationsOf(document).find(o => o.operationId === 'createBooking')
  if (op === undefined) throw new Error('no createBooking operation')
  const json = { 'content-type': 'application/json' }
  const sold = JSON.stringify({ success: false, error: { code: 'SOLD_OUT', message: 'Section is sold out', remaining: 0 } })
  t.equal(checks.answerProblem(op, 409, json, sold), undefined, 'a declared answer passes')
  t.match(checks.answerProblem(op, 418, json, sold), /418 is not declared/)
  t.match(checks.answerProblem(op, 404, json, sold), /404: body/, 'a code the status does not carry')
  t.match(checks.answerProblem(op, 201, json, JSON.stringify({ success: true, data: { _id: 'x' } })), /201: body/)
  t.match(checks.answerProblem(op, 429, { ...json, 'retry-after': 'soon' }, JSON.stringify({ success: false, error: { code: 'RATE_LIMITED', message: 'm' } })), /Retry-After/)
  t.match(checks.answerProblem(op, 409, { 'content-type': 'text/html' }, '<p>409</p>'), /content type/)
  const good = { eventId: 'a'.repeat(24), sectionId: 'b'.repeat(24), qty: 1 }
  t.equal(checks.requestProblem(op, { path: {}, query: {}, headers: {}, body: { json: good } }), undefined, 'a valid request')
  t.match(checks.requestProblem(op, { path: {}, query: {}, headers: {}, body: { json: { ...good, qty: 11 } } }), /body\/qty/)
  t.match(checks.requestProblem(op, { path: {}, query: {}, headers: { 'idempotency-key': 'k'.repeat(256) }, body: { json: good } }), /header/)
  t.ok(checks.requestProblem(op, { path: {}, query: {}, headers: {}, body: { raw: '{', contentType: 'application/json' } }))
})

// with Redis, also the rate limit (counted in Redis), so 429 and its headers are answered too
for (const setup of STORE_SETUPS) {
  const skip = await missing(...setup.needs)
  if (skip !== undefined) console.log(`# SKIPPED conformance on ${setup.name}: ${skip}`)
  const limit: Record<string, string> = setup.needs.includes('redis') ? { RATE_LIMIT_MAX: '12' } : {}
  t.test(`conformance on ${setup.name}`, { skip }, async t => {
    await conformance(t, { ...await setup.env(t), ...limit }, `${setup.name}${'RATE_LIMIT_MAX' in limit ? ' (RATE_LIMIT_MAX=12)' : ''}`)
  })
}
