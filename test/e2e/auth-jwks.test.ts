/**
 * JWKS mode over real HTTP: the app listening on 127.0.0.1 verifies tokens
 * with the keys of a local identity provider (test/helpers/jwks-server.ts)
 * that counts its fetches, so caching, rotation and the refetch limit are
 * seen from the provider's side.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { createEvent } from '../helpers/create-event.ts'
import { pgliteDataDir } from '../helpers/databases.ts'
import { urlClient } from '../helpers/http-client.ts'
import { newSigningKey, signWith, startJwksServer, type JwksServer, type SigningKey } from '../helpers/jwks-server.ts'
import { listeningApp } from '../helpers/listening-app.ts'
import { freePort } from '../helpers/server-process.ts'
import { bearer } from '../helpers/tokens.ts'

/** A JWKS-mode app (AUTH_JWKS_REFRESH_MS as given) and a GET /bookings as one token. */
async function jwksApp (t: Test, jwksUrl: string, env: Record<string, string> = {}) {
  const { url } = await listeningApp(t, { DATA_DIR: await pgliteDataDir(t), AUTH_JWKS_URL: jwksUrl, ...env })
  const list = async (token: string) => await urlClient(url, { headers: bearer(token) }).request('GET', '/bookings')
  return { url, list }
}

/** n tokens whose kids the JWKS does not serve, each signed with its own key. */
async function unknownKidTokens (n: number): Promise<string[]> {
  return await Promise.all(Array.from({ length: n }, async (_, i) => await signWith(await newSigningKey('ES256', `unknown-${i}`), `stranger-${i}`)))
}

t.test('RS256, ES256 and EdDSA tokens from the JWKS are accepted; one fetch serves them all', async t => {
  const keys = await Promise.all([newSigningKey('RS256', 'rs'), newSigningKey('ES256', 'es'), newSigningKey('EdDSA', 'ed')])
  const jwks = await startJwksServer(t, keys)
  const { url, list } = await jwksApp(t, jwks.url)
  for (const key of keys) {
    const res = await list(await signWith(key, `user-${key.alg}`))
    t.equal(res.status, 200, `${key.alg} token accepted`)
  }
  // a write too: an organizer's EdDSA token creates an event it owns
  const organizer = urlClient(url, { headers: bearer(await signWith(keys[2], 'olga', { roles: ['organizer'] })) })
  const { status } = await createEvent(organizer, [3])
  t.equal(status, 201, 'EdDSA organizer token creates an event')
  t.equal(jwks.fetches, 1, 'the key set was fetched once and cached')
})

t.test('key rotation: a new kid is accepted after one refetch; a removed key stops verifying new tokens', async t => {
  const [old, next] = await Promise.all([newSigningKey('RS256', 'key-2024'), newSigningKey('RS256', 'key-2025')])
  const jwks = await startJwksServer(t, [old])
  // no refetch limit: the rotation is seen on the first token of the new kid
  const { list } = await jwksApp(t, jwks.url, { AUTH_JWKS_REFRESH_MS: '0' })
  t.equal((await list(await signWith(old, 'alice'))).status, 200, 'old key accepted')
  t.equal(jwks.fetches, 1)

  jwks.serve([next])
  t.equal((await list(await signWith(next, 'alice'))).status, 200, 'new kid accepted')
  t.equal(jwks.fetches, 2, 'after exactly one refetch')
  t.equal((await list(await signWith(next, 'bob'))).status, 200, 'another token of the new kid')
  t.equal(jwks.fetches, 2, 'needs no further fetch')

  const res = await list(await signWith(old, 'carol'))
  t.equal(res.status, 401, 'a new token of the removed key is refused')
  t.match(res.body.error?.message, /unknown key/)
})

t.test('unknown kid: 401, and refetches limited to one per AUTH_JWKS_REFRESH_MS', async t => {
  const key = await newSigningKey('RS256', 'served')
  const tokens = await unknownKidTokens(20)

  // with a 10-minute refresh limit, the first unknown kid fetches the set (it was never fetched) and no other does
  const limited = await startJwksServer(t, [key])
  const { list } = await jwksApp(t, limited.url, { AUTH_JWKS_REFRESH_MS: '600000' })
  const sequential = []
  for (const token of tokens.slice(0, 10)) sequential.push(await list(token))
  const concurrent = await Promise.all(tokens.slice(10).map(list))
  t.same([...sequential, ...concurrent].map(r => r.status), Array(20).fill(401), 'every unknown kid refused 401')
  t.same([...new Set([...sequential, ...concurrent].map(r => r.body.error?.message))], ['Authentication required: token signed with an unknown key'])
  t.equal(limited.fetches, 1, '20 unknown kids, sequential and concurrent: one fetch')
  t.equal((await list(await signWith(key, 'alice'))).status, 200, 'the served key is still accepted')
  t.equal(limited.fetches, 1, 'from the fetched set')

  // within the limit, a key the provider adds is not seen yet either: the price of the limit
  const added = await newSigningKey('RS256', 'added')
  limited.serve([key, added])
  t.equal((await list(await signWith(added, 'alice'))).status, 401, 'a key added within the refresh limit is not fetched yet')
  t.equal(limited.fetches, 1)

  // the control: without the limit, the same tokens make the provider serve a fetch each
  const unlimited = await startJwksServer(t, [key])
  const control = await jwksApp(t, unlimited.url, { AUTH_JWKS_REFRESH_MS: '0' })
  for (const token of tokens.slice(0, 10)) t.equal((await control.list(token)).status, 401)
  t.ok(unlimited.fetches >= 10, `without the limit 10 unknown kids cost ${unlimited.fetches} fetches`)
})

/** GET /bookings answered 503 AUTH_UNAVAILABLE with Retry-After and no Bearer challenge. */
async function assertUnavailable (t: Test, list: (token: string) => Promise<any>, key: SigningKey, what: string): Promise<void> {
  const res = await list(await signWith(key, 'alice'))
  t.equal(res.status, 503, `${what}: 503, not 401 or 500`)
  t.match(res.body, { success: false, error: { code: 'AUTH_UNAVAILABLE' } })
  t.ok(Number(res.headers['retry-after']) > 0, 'Retry-After')
  t.notOk(res.headers['www-authenticate'], 'no Bearer challenge: the token was not judged')
}

t.test('JWKS unreachable on first use: 503 AUTH_UNAVAILABLE; served again: tokens accepted', async t => {
  const key = await newSigningKey('RS256', 'rs')
  const port = await freePort()
  const { list } = await jwksApp(t, `http://127.0.0.1:${port}/.well-known/jwks.json`)
  await assertUnavailable(t, list, key, 'nothing listening at AUTH_JWKS_URL')
  const jwks: JwksServer = await startJwksServer(t, [key], { port })
  t.equal((await list(await signWith(key, 'alice'))).status, 200, 'the provider back: accepted with no restart')
  t.equal(jwks.fetches, 1)
})

t.test('JWKS answering 500 on first use: 503 AUTH_UNAVAILABLE', async t => {
  const key = await newSigningKey('ES256', 'es')
  const jwks = await startJwksServer(t, [key])
  jwks.failWith(500)
  const { list } = await jwksApp(t, jwks.url)
  await assertUnavailable(t, list, key, 'the provider answers 500')
  t.equal(jwks.fetches, 1, 'the provider was asked')
})

// "A key removed from the JWKS stops working within AUTH_TOKEN_CACHE_MS" (docs/configuration.md):
// jose keeps a key set 10 minutes by default without asking the provider again, so the
// verifier gives it a cacheMaxAge of its own.
t.test('a key removed from the JWKS stops verifying new tokens within AUTH_TOKEN_CACHE_MS', async t => {
  const [removed, kept] = await Promise.all([newSigningKey('RS256', 'removed'), newSigningKey('RS256', 'kept')])
  const jwks = await startJwksServer(t, [removed, kept])
  const { list } = await jwksApp(t, jwks.url, { AUTH_TOKEN_CACHE_MS: '1000' })
  t.equal((await list(await signWith(removed, 'alice'))).status, 200, 'accepted while served')
  jwks.serve([kept])
  await sleep(1500) // past AUTH_TOKEN_CACHE_MS
  const res = await list(await signWith(removed, 'bob'))
  t.equal(res.status, 401, `a new token of the removed key is refused (answered ${res.status}; the JWKS was fetched ${jwks.fetches} time(s))`)
})
