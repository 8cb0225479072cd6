/**
 * Who may do what, table-driven: every principal × every action, with the
 * exact status of each cell, on every store set-up. Refused reads and cancels
 * of someone else's booking answer 404 and change nothing; afterwards the
 * invariant holds and remaining seats match the bookings that stand.
 */
import t, { type Test } from 'tap'
import { buildApp } from '../helpers/build-app.ts'
import { createEvent } from '../helpers/create-event.ts'
import { injectClient, type ApiClient, type ApiResponse } from '../helpers/http-client.ts'
import { checkViaApi } from '../helpers/invariant.ts'
import { missing } from '../helpers/services.ts'
import { STORE_SETUPS } from '../helpers/store-setups.ts'
import { textTable } from '../helpers/text-table.ts'
import { bearer, signToken } from '../helpers/tokens.ts'

interface Actor { label: string, sub?: string, roles?: string[] }

// alice owns the bookings read and cancelled; olga owns the event they are for
const ACTORS: Actor[] = [
  { label: 'anonymous' },
  { label: 'customer (own)', sub: 'alice', roles: ['customer'] },
  { label: 'other customer', sub: 'bob', roles: ['customer'] },
  { label: 'organizer (owner)', sub: 'olga', roles: ['organizer'] },
  { label: 'other organizer', sub: 'oscar', roles: ['organizer'] },
  { label: 'service', sub: 'box-office', roles: ['service'] },
  { label: 'admin', sub: 'root', roles: ['admin'] }
]

const ACTIONS = ['create event', 'read event', 'book as self', 'book for carol', 'list bookings', 'get booking', 'cancel booking'] as const
type Action = typeof ACTIONS[number]

/** The expected status of each cell, in ACTORS order. */
const EXPECTED: Record<Action, number[]> = {
  'create event': [401, 403, 403, 201, 201, 403, 201],
  'read event': [200, 200, 200, 200, 200, 200, 200],
  'book as self': [401, 201, 201, 403, 403, 400, 400],
  'book for carol': [401, 403, 403, 403, 403, 201, 201],
  'list bookings': [401, 200, 200, 200, 200, 200, 200],
  'get booking': [401, 200, 404, 200, 404, 200, 200],
  'cancel booking': [401, 200, 404, 200, 404, 200, 200]
}

const CODES: Record<number, string> = { 400: 'VALIDATION_ERROR', 401: 'UNAUTHENTICATED', 403: 'FORBIDDEN', 404: 'NOT_FOUND' }

const CAPACITY = 100

interface Stored { id: string, userId: string, eventOwner: string }

/** What the design lets a principal list: service/admin all, an organizer its events', a customer its own. */
function visible (actor: Actor, bookings: Stored[]): string[] {
  const roles = actor.roles ?? []
  const seen = roles.includes('service') || roles.includes('admin')
    ? bookings
    : bookings.filter(b => roles.includes('organizer') ? b.eventOwner === actor.sub : b.userId === actor.sub)
  return seen.map(b => b.id).sort()
}

async function clientOf (app: Parameters<typeof injectClient>[0], actor: Actor): Promise<ApiClient> {
  return injectClient(app, actor.sub === undefined ? {} : bearer(await signToken({ sub: actor.sub, roles: actor.roles })))
}

async function runMatrix (t: Test, env: Record<string, string>): Promise<void> {
  const app = await buildApp(t, env)
  const clients = await Promise.all(ACTORS.map(async a => await clientOf(app, a)))
  const [, alice, , olga, oscar, , admin] = clients
  const cells = new Map<Action, string[]>(ACTIONS.map(a => [a, []]))
  const bookings: Stored[] = []

  /** Asserts one cell's status (and error code) and records it for the table. */
  const cell = (action: Action, i: number, res: ApiResponse, note = ''): void => {
    const expected = EXPECTED[action][i]
    t.equal(res.status, expected, `${ACTORS[i].label} × ${action}`, { answer: res.text.slice(0, 300) })
    if (CODES[expected] !== undefined) t.equal(res.body.error?.code, CODES[expected], `${ACTORS[i].label} × ${action}: ${CODES[expected]}`)
    if (expected === 400) t.equal(res.body.error?.field, 'userId', `${ACTORS[i].label} × ${action}: the field named`)
    cells.get(action)!.push(`${res.status}${note}`)
  }
  const record = (res: ApiResponse, eventOwner: string): void => {
    if (res.status === 201) bookings.push({ id: res.body.data._id, userId: res.body.data.userId, eventOwner })
  }

  const { eventId, sectionId } = await createEvent(olga, [CAPACITY], { name: "Olga's event" })
  const book = async (client: ApiClient, body: Record<string, unknown> = {}) => await client.request('POST', '/bookings', { eventId, sectionId, qty: 1, ...body })
  const remaining = async (): Promise<number> => (await admin.request('GET', `/api/events/${eventId}`)).body.data.sections[0].remaining
  const statusOf = async (id: string): Promise<string> => (await admin.request('GET', `/api/bookings/${id}`)).body.data.status

  let oscarsEvent: { eventId: string, sectionId: string } | undefined
  for (const [i, client] of clients.entries()) {
    const res = await client.request('POST', '/api/events', { name: `${ACTORS[i].label}'s event`, sections: [{ name: 'A', price: 5, capacity: 10 }] })
    cell('create event', i, res)
    if (ACTORS[i].sub === 'oscar' && res.status === 201) oscarsEvent = { eventId: res.body.data._id, sectionId: res.body.data.sections[0]._id }
  }
  for (const [i, client] of clients.entries()) {
    const res = await client.request('GET', `/api/events/${eventId}`)
    cell('read event', i, res)
  }
  for (const [i, client] of clients.entries()) {
    const res = await book(client)
    cell('book as self', i, res)
    record(res, 'olga')
    if (res.status === 201) t.equal(res.body.data.userId, ACTORS[i].sub, `${ACTORS[i].label} booked as itself`)
  }
  for (const [i, client] of clients.entries()) {
    const res = await book(client, { userId: 'carol' })
    cell('book for carol', i, res)
    record(res, 'olga')
    if (res.status === 201) t.equal(res.body.data.userId, 'carol', `${ACTORS[i].label} booked for carol`)
  }

  // alice's bookings the others will read and cancel (one per actor), and one in oscar's event
  const targets: string[] = []
  for (let i = 0; i < ACTORS.length; i++) {
    const res = await book(alice)
    record(res, 'olga')
    targets.push(res.body.data._id)
  }
  if (oscarsEvent === undefined) throw new Error('oscar could not create his event')
  record(await alice.request('POST', '/bookings', { ...oscarsEvent, qty: 1 }), 'oscar')
  t.equal(bookings.length, 4 + ACTORS.length + 1, 'the bookings made so far')

  for (const [i, client] of clients.entries()) {
    const res = await client.request('GET', '/bookings?limit=100')
    const seen = res.status === 200 ? (res.body.data.items as Array<{ _id: string }>).map(b => b._id).sort() : []
    cell('list bookings', i, res, res.status === 200 ? ` (${seen.length}/${bookings.length})` : '')
    if (res.status === 200) t.same(seen, visible(ACTORS[i], bookings), `${ACTORS[i].label} lists exactly what it may see`)
  }
  for (const client of [alice, clients[2]]) {
    const res = await client.request('GET', '/bookings?userId=carol')
    t.same([res.status, res.body.data.total, res.body.data.items], [200, 0, []], 'a customer asking for another userId gets an empty page')
  }
  t.equal((await oscar.request('GET', `/bookings?eventId=${eventId}`)).body.data.total, 0, 'another organizer sees none of olga\'s event')

  for (const [i, client] of clients.entries()) {
    cell('get booking', i, await client.request('GET', `/api/bookings/${targets[0]}`))
  }
  for (const [i, client] of clients.entries()) {
    const before = await remaining()
    const res = await client.request('POST', `/api/bookings/${targets[i]}/cancel`)
    cell('cancel booking', i, res)
    const cancelled = res.status === 200
    t.equal(await statusOf(targets[i]), cancelled ? 'cancelled' : 'confirmed', `${ACTORS[i].label}: booking ${cancelled ? 'cancelled' : 'unchanged'}`)
    t.equal(await remaining(), before + (cancelled ? 1 : 0), `${ACTORS[i].label}: remaining ${cancelled ? 'one seat more' : 'unchanged'}`)
  }

  const onOlgas = bookings.filter(b => b.eventOwner === 'olga')
  const cancelledCount = EXPECTED['cancel booking'].filter(s => s === 200).length
  const { problems } = await checkViaApi(admin, eventId, { expected: { created: onOlgas.length, ids: onOlgas.map(b => b.id) } })
  t.same(problems, [], 'invariant: capacity == remaining + sold, every 201 stored')
  t.equal(await remaining(), CAPACITY - onOlgas.length + cancelledCount, 'remaining = capacity - bookings standing')

  t.comment(`role × action (status; list: seen/all bookings):\n${textTable([
    ['principal', ...ACTIONS],
    ...ACTORS.map((a, i) => [a.label, ...ACTIONS.map(action => cells.get(action)![i])])
  ])}`)
}

for (const setup of STORE_SETUPS) {
  const skip = await missing(...setup.needs)
  if (skip !== undefined) console.log(`# SKIPPED role × action matrix on ${setup.name}: ${skip}`)
  t.test(`role × action matrix on ${setup.name}`, { skip }, async t => { await runMatrix(t, await setup.env(t)) })
}
