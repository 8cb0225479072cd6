/**
 * Forged and malformed tokens against the app listening on 127.0.0.1 (real
 * HTTP through fetch): each is refused 401 UNAUTHENTICATED with a
 * WWW-Authenticate challenge and the reason it was refused, and a valid token
 * (the control) is accepted. Two servers: HS256 with issuer and audience
 * configured, and JWKS mode (RS256 keys from a local identity provider).
 */
import t, { type Test } from 'tap'
import { pgliteDataDir } from '../helpers/databases.ts'
import { compactToken, freshClaims, hs256Token, tamperedToken } from '../helpers/forged-tokens.ts'
import { newSigningKey, signWith, startJwksServer } from '../helpers/jwks-server.ts'
import { listeningApp } from '../helpers/listening-app.ts'
import { textTable } from '../helpers/text-table.ts'
import { bearer, signToken, TEST_SECRET } from '../helpers/tokens.ts'

const ISSUER = 'https://id.example.test/'
const AUDIENCE = 'ticket-booking'
const HOUR = 3600
const now = (): number => Math.floor(Date.now() / 1000)
const CHALLENGE = 'Bearer realm="ticket-booking"'
const INVALID_TOKEN = `${CHALLENGE}, error="invalid_token"`

interface Case {
  name: string
  /** the request's path (the query string case puts the token there) and headers */
  path?: string
  headers: Record<string, string>
  /** 200 for the controls, else 401 with this reason in the message and this challenge */
  expect: 200 | { reason: RegExp, challenge: string }
}

const refused = (reason: RegExp, challenge = INVALID_TOKEN): Case['expect'] => ({ reason, challenge })

// HS256 tokens as the issuer would sign them, with claims to override
const hsToken = async (claims: Record<string, unknown> = {}, expiresIn = HOUR): Promise<string> =>
  await signToken({ sub: 'alice', roles: ['customer'], expiresIn, claims: { iss: ISSUER, aud: AUDIENCE, ...claims } })

async function secretCases (): Promise<Case[]> {
  const valid = await hsToken()
  const claims = freshClaims({ sub: 'alice', roles: ['customer'], iss: ISSUER, aud: AUDIENCE })
  return [
    { name: 'valid HS256 token (control)', headers: bearer(valid), expect: 200 },
    { name: 'alg none, no signature', headers: bearer(compactToken({ alg: 'none', typ: 'JWT' }, claims)), expect: refused(/algorithm not accepted/) },
    { name: 'signed with another secret', headers: bearer(await signToken({ sub: 'alice', secret: `${TEST_SECRET}-but-not-this-one`, claims: { iss: ISSUER, aud: AUDIENCE } })), expect: refused(/signature invalid/) },
    { name: 'expired an hour ago', headers: bearer(await hsToken({}, -HOUR)), expect: refused(/token expired/) },
    { name: 'nbf an hour from now', headers: bearer(await hsToken({ nbf: now() + HOUR })), expect: refused(/not yet valid/) },
    { name: 'wrong issuer', headers: bearer(await hsToken({ iss: 'https://evil.example.test/' })), expect: refused(/issuer not accepted/) },
    { name: 'no issuer', headers: bearer(await signToken({ sub: 'alice', claims: { aud: AUDIENCE } })), expect: refused(/issuer not accepted/) },
    { name: 'wrong audience', headers: bearer(await hsToken({ aud: 'another-service' })), expect: refused(/audience not accepted/) },
    { name: 'roles changed to admin after signing', headers: bearer(tamperedToken(valid, p => ({ ...p, roles: ['admin'] }))), expect: refused(/signature invalid/) },
    { name: 'sub changed after signing', headers: bearer(tamperedToken(valid, p => ({ ...p, sub: 'bob' }))), expect: refused(/signature invalid/) },
    { name: 'garbage', headers: bearer('not-a-jwt'), expect: refused(/malformed token/) },
    { name: 'three garbage parts', headers: bearer('a.b.c'), expect: refused(/malformed token/) },
    { name: 'Basic scheme instead of Bearer', headers: { authorization: `Basic ${Buffer.from('alice:pw').toString('base64')}` }, expect: refused(/must be "Bearer <token>"/) },
    { name: 'valid token in ?access_token=, no header', path: `/bookings?access_token=${valid}`, headers: {}, expect: refused(/bearer token is required/, CHALLENGE) },
    { name: 'no exp (hand-signed)', headers: bearer(hs256Token({}, { sub: 'alice', iat: now(), iss: ISSUER, aud: AUDIENCE }, TEST_SECRET)), expect: refused(/no valid exp/) },
    { name: 'sub a number (hand-signed)', headers: bearer(hs256Token({}, { ...claims, sub: 42 }, TEST_SECRET)), expect: refused(/sub must be/) },
    { name: 'roles a string, not an array (hand-signed)', headers: bearer(hs256Token({}, { ...claims, roles: 'admin' }, TEST_SECRET)), expect: refused(/roles must be an array/) }
  ]
}

async function jwksCases (t: Test): Promise<{ cases: Case[], jwksUrl: string }> {
  const key = await newSigningKey('RS256', 'rs-1')
  const jwks = await startJwksServer(t, [key])
  // same kid, another private key: what an attacker who read the kid can sign with
  const impostor = await newSigningKey('RS256', 'rs-1')
  const claims = freshClaims({ sub: 'alice', roles: ['admin'] })
  const cases: Case[] = [
    { name: 'valid RS256 token from the JWKS (control)', headers: bearer(await signWith(key, 'alice')), expect: 200 },
    { name: 'HS256 keyed with the RS public key (PEM)', headers: bearer(hs256Token({ kid: key.kid }, claims, key.publicPem)), expect: refused(/algorithm not accepted/) },
    { name: 'HS256 keyed with the test secret', headers: bearer(hs256Token({ kid: key.kid }, claims, TEST_SECRET)), expect: refused(/algorithm not accepted/) },
    { name: 'alg none with the served kid', headers: bearer(compactToken({ alg: 'none', kid: key.kid }, claims)), expect: refused(/algorithm not accepted/) },
    { name: 'RS256 by another key with the served kid', headers: bearer(await signWith(impostor, 'alice', { roles: ['admin'] })), expect: refused(/signature invalid/) },
    { name: 'RS256 payload tampered', headers: bearer(tamperedToken(await signWith(key, 'alice'), p => ({ ...p, roles: ['admin'] }))), expect: refused(/signature invalid/) },
    { name: 'RS256 expired', headers: bearer(await signWith(key, 'alice', { expiresIn: -HOUR })), expect: refused(/token expired/) },
    { name: 'garbage', headers: bearer('not-a-jwt'), expect: refused(/malformed token/) }
  ]
  return { cases, jwksUrl: jwks.url }
}

async function answer (url: string, c: Case): Promise<{ status: number, challenge: string | null, code?: string, message?: string }> {
  const res = await fetch(url + (c.path ?? '/bookings'), { headers: c.headers })
  const body = await res.json() as { error?: { code: string, message: string } }
  return { status: res.status, challenge: res.headers.get('www-authenticate'), code: body.error?.code, message: body.error?.message }
}

/** Sends each case, asserts its answer and prints them all as a table. */
async function check (t: Test, label: string, url: string, cases: Case[]): Promise<void> {
  const results = [['token', 'status', 'WWW-Authenticate', 'answer']]
  for (const c of cases) {
    const got = await answer(url, c)
    results.push([c.name, String(got.status), got.challenge ?? '-', got.message?.replace('Authentication required: ', '') ?? 'accepted'])
    if (c.expect === 200) {
      t.equal(got.status, 200, `${label}: ${c.name} accepted`)
      t.equal(got.challenge, null, `${label}: ${c.name}: no challenge`)
      continue
    }
    t.equal(got.status, 401, `${label}: ${c.name} refused 401`)
    t.equal(got.code, 'UNAUTHENTICATED', `${label}: ${c.name}: UNAUTHENTICATED`)
    t.match(got.message, c.expect.reason, `${label}: ${c.name}: for the right reason`)
    t.equal(got.challenge, c.expect.challenge, `${label}: ${c.name}: WWW-Authenticate`)
  }
  t.comment(`forged tokens, ${label} server (GET /bookings over HTTP):\n${textTable(results)}`)
}

t.test('HS256 server with AUTH_ISSUER and AUTH_AUDIENCE', async t => {
  const { url } = await listeningApp(t, { DATA_DIR: await pgliteDataDir(t), AUTH_JWT_SECRET: TEST_SECRET, AUTH_ISSUER: ISSUER, AUTH_AUDIENCE: AUDIENCE })
  await check(t, 'HS256', url, await secretCases())
})

t.test('JWKS server (RS256)', async t => {
  const { cases, jwksUrl } = await jwksCases(t)
  const { url } = await listeningApp(t, { DATA_DIR: await pgliteDataDir(t), AUTH_JWKS_URL: jwksUrl })
  await check(t, 'JWKS', url, cases)
})
