/**
 * A stand-in identity provider for JWKS-mode tests: asymmetric signing keys
 * (RS256, ES256, EdDSA) and a node:http server on 127.0.0.1 that serves the
 * public halves of the keys it is given (changeable mid-test, or an error
 * status instead) and counts how often the key set was fetched.
 */
import { once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type JWK } from 'jose'
import type { TestContext } from './context.ts'

export type AsymmetricAlg = 'RS256' | 'ES256' | 'EdDSA'

type KeyPair = Awaited<ReturnType<typeof generateKeyPair>>

export interface SigningKey {
  kid: string
  alg: AsymmetricAlg
  privateKey: KeyPair['privateKey']
  /** what the JWKS serves for this key */
  publicJwk: JWK
  /** the public key as PEM (SPKI): what an attacker can read, and tries as an HMAC secret */
  publicPem: string
}

export async function newSigningKey (alg: AsymmetricAlg, kid: string): Promise<SigningKey> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true })
  return {
    kid,
    alg,
    privateKey,
    publicJwk: { ...await exportJWK(publicKey), kid, alg, use: 'sig' },
    publicPem: await exportSPKI(publicKey)
  }
}

export interface SignOptions {
  roles?: string[]
  /** seconds from now (default an hour) */
  expiresIn?: number
  /** other claims (iss, aud, nbf, ...) */
  claims?: Record<string, unknown>
  /** protected header fields to change (a kid the JWKS does not serve, say) */
  header?: Record<string, unknown>
}

/** A token signed with key's private half, its header naming key's kid and alg. */
export async function signWith (key: SigningKey, sub: string, { roles, expiresIn = 3600, claims = {}, header = {} }: SignOptions = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000)
  return await new SignJWT({ ...(roles === undefined ? {} : { roles }), ...claims })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT', ...header })
    .setSubject(sub)
    .setIssuedAt(now)
    .setExpirationTime(now + expiresIn)
    .sign(key.privateKey)
}

export interface JwksServer {
  /** the key set's URL, for AUTH_JWKS_URL */
  url: string
  /** GET requests of the key set so far */
  readonly fetches: number
  /** serve these keys from now on (a rotation) */
  serve: (keys: SigningKey[]) => void
  /** answer every fetch with this status and no key set (a broken identity provider) */
  failWith: (status: number) => void
}

/** Listens on 127.0.0.1 (port: any free one unless given); closed at teardown. */
export async function startJwksServer (t: TestContext, keys: SigningKey[], { port = 0 } = {}): Promise<JwksServer> {
  let body = ''
  let failure: number | undefined
  let fetches = 0
  const serve = (next: SigningKey[]): void => {
    body = JSON.stringify({ keys: next.map(k => k.publicJwk) })
    failure = undefined
  }
  serve(keys)
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || req.url !== '/.well-known/jwks.json') {
      res.writeHead(404).end()
      return
    }
    fetches++
    if (failure !== undefined) res.writeHead(failure, { 'content-type': 'text/plain' }).end('identity provider failure')
    else res.writeHead(200, { 'content-type': 'application/json' }).end(body)
  })
  server.listen(port, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(async () => {
    server.closeAllConnections()
    server.close()
    await once(server, 'close')
  })
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`,
    get fetches () { return fetches },
    serve,
    failWith: (status) => { failure = status }
  }
}
