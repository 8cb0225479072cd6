/**
 * Identity and the metrics: GET /metrics behind METRICS_TOKEN, and refused
 * booking requests (401, 403) counted as bookings_total{outcome="denied"}.
 */
import t from 'tap'
import { buildApp } from '../helpers/build-app.ts'
import { createEvent } from '../helpers/create-event.ts'
import { pgliteDataDir, tempDataDir } from '../helpers/databases.ts'
import { injectClient } from '../helpers/http-client.ts'
import { one, parseExposition } from '../helpers/prometheus-text.ts'
import { bearer, signToken } from '../helpers/tokens.ts'

const METRICS_TOKEN = 'scrape-0123456789-abcdef'

t.test('METRICS_TOKEN: GET /metrics needs that bearer token', async t => {
  const app = await buildApp(t, { DATA_DIR: await pgliteDataDir(t), METRICS_TOKEN })
  const scrape = async (headers: Record<string, string>) => await injectClient(app, headers).request('GET', '/metrics')
  const none = await scrape({})
  t.equal(none.status, 401, 'no token: 401')
  t.equal(none.headers['www-authenticate'], 'Bearer realm="ticket-booking"')
  const wrong = await scrape(bearer(`${METRICS_TOKEN}x`))
  t.equal(wrong.status, 401, 'a wrong token: 401')
  t.equal(wrong.headers['www-authenticate'], 'Bearer realm="ticket-booking", error="invalid_token"')
  t.equal((await scrape(bearer(await signToken({ sub: 'root', roles: ['admin'] })))).status, 401, 'an admin\'s JWT is not the scraper\'s token')
  const right = await scrape(bearer(METRICS_TOKEN))
  t.equal(right.status, 200, 'the token: 200')
  t.match(right.headers['content-type'], /^text\/plain/)
  t.ok(parseExposition(right.text).samples.length > 0, 'the exposition')
})

t.test('without METRICS_TOKEN, GET /metrics is open', async t => {
  const app = await buildApp(t, { DATA_DIR: await pgliteDataDir(t) })
  t.equal((await injectClient(app).request('GET', '/metrics')).status, 200)
})

// A token with a space or '!' passes the config (any 16+ characters) but can never
// match: plugins/auth.ts reads only RFC 6750 token68 characters after "Bearer ".
// Either the config refuses such a token naming METRICS_TOKEN, or it works.
t.test('a METRICS_TOKEN the service starts with can be presented', async t => {
  const token = 'prometheus scraper #1!'
  const app = await buildApp(t, { DATA_DIR: tempDataDir(t), METRICS_TOKEN: token }).catch((err: Error) => err)
  if (app instanceof Error) {
    t.match(app.message, /METRICS_TOKEN/, 'refused at start, naming the variable')
    return
  }
  t.equal((await injectClient(app, bearer(token)).request('GET', '/metrics')).status, 200, 'or accepted when presented as configured')
})

t.test('401 and 403 on POST /bookings are counted as denied', async t => {
  const app = await buildApp(t, { DATA_DIR: await pgliteDataDir(t) })
  const as = async (sub: string, roles: string[]) => injectClient(app, bearer(await signToken({ sub, roles })))
  const { eventId, sectionId } = await createEvent(await as('olga', ['organizer']), [10])
  const book = async (headers: Record<string, string>, body: Record<string, unknown> = {}) =>
    (await injectClient(app, headers).request('POST', '/bookings', { eventId, sectionId, qty: 1, ...body })).status
  const answers = [
    await book({}), // no token
    await book(bearer('not-a-jwt')), // a bad one
    await book(bearer(await signToken({ sub: 'alice', expiresIn: -3600 }))), // an expired one
    await book(bearer(await signToken({ sub: 'alice', roles: ['customer'] })), { userId: 'bob' }), // a customer for another
    await book(bearer(await signToken({ sub: 'olga', roles: ['organizer'] }))), // an organizer
    await book(bearer(await signToken({ sub: 'desk', roles: ['service'] }))), // a service naming nobody: invalid, not denied
    await book(bearer(await signToken({ sub: 'alice', roles: ['customer'] }))) // booked
  ]
  t.same(answers, [401, 401, 401, 403, 403, 400, 201])
  const metrics = parseExposition((await injectClient(app).request('GET', '/metrics')).text)
  t.equal(one(metrics, 'bookings_total', { outcome: 'denied' }), 5, 'three 401s and two 403s')
  t.equal(one(metrics, 'bookings_total', { outcome: 'invalid' }), 1)
  t.equal(one(metrics, 'bookings_total', { outcome: 'confirmed' }), 1)
})
