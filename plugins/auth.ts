import { timingSafeEqual } from 'node:crypto'
import { resolve } from 'node:path'
import type { FastifyRequest, onRequestHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { devSecret } from '../lib/auth/dev-secret.ts'
import { GATEWAY, type Principal } from '../lib/domain/principal.ts'
import { createTokenVerifier, type TokenVerifier } from '../lib/auth/token-verifier.ts'
import { UnauthenticatedError } from '../lib/domain/errors.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** onRequest hook of the guarded scope (app.ts): a verified bearer token, or 401 */
    authenticate: onRequestHookHandler
    /** authenticate when a token is sent, else leave the request to nobody (public reads) */
    identify: onRequestHookHandler
    /** onRequest hook of GET /metrics: the bearer METRICS_TOKEN when one is set */
    authenticateScraper: (request: FastifyRequest) => Promise<void>
  }
  interface FastifyRequest {
    /** who is asking, set by authenticate; outside the guarded scope nobody, who may do nothing */
    principal: Principal
  }
}

const NOBODY: Principal = Object.freeze({ sub: '', roles: Object.freeze([]) })
const PRINCIPAL = Symbol('principal')
const BEARER = /^Bearer +([\w\-.~+/]+=*) *$/i

/** The token of an `Authorization: Bearer <token>` header, or why there is none; the query string and cookies are never read. */
function bearerToken (request: FastifyRequest): string | UnauthenticatedError {
  const header = request.headers.authorization
  if (header === undefined) return new UnauthenticatedError('a bearer token is required (Authorization: Bearer <token>)')
  const match = BEARER.exec(header)
  return match === null ? new UnauthenticatedError('the Authorization header must be "Bearer <token>"') : match[1]
}

/**
 * Identity: bearer JWTs verified against AUTH_JWKS_URL or AUTH_JWT_SECRET; with
 * neither, development mode (a secret generated under DATA_DIR, tokens still
 * required); AUTH_DISABLED=true trusts a gateway in front to have checked.
 */
export default fp(async (fastify) => {
  const { AUTH_DISABLED, AUTH_JWKS_URL, AUTH_JWT_SECRET, AUTH_ISSUER, AUTH_AUDIENCE, DATA_DIR, METRICS_TOKEN } = fastify.config
  let verifier: TokenVerifier | undefined
  if (AUTH_DISABLED) {
    if (AUTH_JWKS_URL !== undefined || AUTH_JWT_SECRET !== undefined) throw new Error('AUTH_DISABLED=true and AUTH_JWKS_URL or AUTH_JWT_SECRET are set: choose one')
    fastify.log.warn('AUTH_DISABLED=true: NO TOKEN IS CHECKED. Every request may do anything; userId comes from the body. Only for a service behind a gateway that authenticates.')
  } else {
    if (AUTH_JWKS_URL !== undefined && AUTH_JWT_SECRET !== undefined) throw new Error('AUTH_JWKS_URL and AUTH_JWT_SECRET are both set: choose one')
    if (AUTH_JWT_SECRET !== undefined && Buffer.byteLength(AUTH_JWT_SECRET) < 32) throw new Error('AUTH_JWT_SECRET must be at least 32 bytes')
    let secret = AUTH_JWT_SECRET
    if (AUTH_JWKS_URL === undefined && secret === undefined) {
      const dev = devSecret(resolve(DATA_DIR))
      secret = dev.secret
      fastify.log.warn({ secretFile: dev.file }, 'development mode: no AUTH_JWKS_URL or AUTH_JWT_SECRET; tokens are signed with a generated secret (npm run token -- --role organizer --sub alice)')
    }
    verifier = createTokenVerifier({
      jwksUrl: AUTH_JWKS_URL,
      secret,
      issuer: AUTH_ISSUER,
      audience: AUTH_AUDIENCE,
      jwksRefreshMs: fastify.config.AUTH_JWKS_REFRESH_MS,
      cacheMs: fastify.config.AUTH_TOKEN_CACHE_MS
    })
  }

  fastify.decorateRequest('principal', {
    getter (this: FastifyRequest & { [PRINCIPAL]?: Principal }) { return this[PRINCIPAL] ?? NOBODY },
    setter (this: FastifyRequest & { [PRINCIPAL]?: Principal }, principal: Principal) { this[PRINCIPAL] = principal }
  })

  // A callback hook: a token verified a moment ago (a client's every request) passes
  // without a promise; only an unknown token waits for its signature check.
  const authenticate: onRequestHookHandler = function (request, _reply, done) {
    if (verifier === undefined) {
      request.principal = GATEWAY
      done()
      return
    }
    // a client's every request: "Bearer " and a token verified a moment ago (only what
    // passed the checks is remembered, so it is well-formed): no regex, no promise
    const header = request.headers.authorization
    const known = header?.startsWith('Bearer ') === true ? verifier.known(header.slice(7)) : undefined
    if (known !== undefined) {
      request.principal = known
      done()
      return
    }
    const token = bearerToken(request)
    if (typeof token !== 'string') {
      done(token)
      return
    }
    verifier.verify(token).then(principal => { request.principal = principal; done() }, done)
  }
  fastify.decorate('authenticate', authenticate)
  // public reads: a token, when one is sent, says who is asking (an organizer sees its drafts);
  // none sent, nobody (who sees what anyone sees)
  fastify.decorate('identify', function (request, reply, done) {
    if (verifier !== undefined && request.headers.authorization === undefined) {
      done()
      return
    }
    authenticate.call(this, request, reply, done)
  } satisfies onRequestHookHandler)

  const scraperToken = METRICS_TOKEN === undefined ? undefined : Buffer.from(METRICS_TOKEN)
  fastify.decorate('authenticateScraper', async (request: FastifyRequest) => {
    if (scraperToken === undefined) return
    const token = bearerToken(request)
    if (typeof token !== 'string') throw token
    const given = Buffer.from(token)
    if (given.length !== scraperToken.length || !timingSafeEqual(given, scraperToken)) throw new UnauthenticatedError('the metrics token does not match')
  })
}, { name: 'auth', dependencies: ['config'] })
