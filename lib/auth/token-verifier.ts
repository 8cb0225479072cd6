/**
 * Bearer token verification with jose: HS256 with a shared secret, or
 * RS256/ES256/EdDSA with the keys of an identity provider's JWKS (fetched,
 * cached, refetched at most every `jwksRefreshMs` for an unknown `kid`).
 * Algorithms are pinned to the key type, `exp` is required, `nbf`, issuer and
 * audience are checked. Verified tokens are remembered for a short while, so a
 * client's every request does not pay for a signature check.
 */
import { createRemoteJWKSet, errors, jwtVerify, type JWTVerifyGetKey, type JWTVerifyOptions } from 'jose'
import { LRUCache } from 'lru-cache'
import { AuthUnavailableError, UnauthenticatedError } from '../domain/errors.ts'
import { principalOf, type Principal } from '../domain/principal.ts'

export interface TokenVerifierOptions {
  /** an identity provider's JWKS (RS256, ES256, EdDSA) ... */
  jwksUrl?: string
  /** ... or a shared HS256 secret of at least 32 bytes */
  secret?: string
  issuer?: string
  audience?: string
  /** least time between two fetches of the JWKS for a `kid` it does not hold */
  jwksRefreshMs?: number
  /** how long a verified token, and the JWKS (at least 1 s), is trusted before being checked again (never past the token's exp) */
  cacheMs?: number
  /** most verified tokens remembered */
  cacheSize?: number
  /** now, epoch ms (tests move it) */
  clock?: () => number
}

export interface TokenVerifier {
  /** The principal of a token verified a moment ago, if any: no signature check, no promise. */
  known: (token: string) => Principal | undefined
  /** Verifies the token (or finds it known): its principal, or UnauthenticatedError / AuthUnavailableError. */
  verify: (token: string) => Promise<Principal>
}

const ASYMMETRIC = ['RS256', 'ES256', 'EdDSA']
/** accepted clock difference with the identity provider, seconds */
const CLOCK_TOLERANCE_S = 5

/** Errors that say the token itself is bad: a 401. */
const TOKEN_ERRORS = [
  errors.JWTInvalid, errors.JWSInvalid, errors.JOSENotSupported, errors.JWKSMultipleMatchingKeys
]

/**
 * Why a token was refused, in words safe to answer. Anything that is not about
 * the token (the JWKS unreachable, timing out, or not a key set) is a 503.
 */
function refusal (err: unknown, jwks: boolean): Error {
  if (err instanceof errors.JWTExpired) return new UnauthenticatedError('token expired')
  if (err instanceof errors.JWTClaimValidationFailed) {
    const reasons: Record<string, string> = { nbf: 'token not yet valid', iss: 'token issuer not accepted', aud: 'token audience not accepted', exp: 'token has no valid exp' }
    return new UnauthenticatedError(reasons[err.claim] ?? `token claim ${err.claim} invalid`)
  }
  if (err instanceof errors.JOSEAlgNotAllowed) return new UnauthenticatedError('token algorithm not accepted')
  if (err instanceof errors.JWKSNoMatchingKey) return new UnauthenticatedError('token signed with an unknown key')
  if (err instanceof errors.JWSSignatureVerificationFailed) return new UnauthenticatedError('token signature invalid')
  if (!jwks || TOKEN_ERRORS.some(kind => err instanceof kind)) return new UnauthenticatedError('malformed token')
  return new AuthUnavailableError(err)
}

export function createTokenVerifier (options: TokenVerifierOptions): TokenVerifier {
  const { jwksUrl, secret } = options
  if ((jwksUrl === undefined) === (secret === undefined)) throw new Error('a token verifier needs one of a JWKS URL or a secret')
  if (secret !== undefined && Buffer.byteLength(secret) < 32) throw new Error('the HS256 secret must be at least 32 bytes')
  const cacheMs = options.cacheMs ?? 60_000
  let key: JWTVerifyGetKey
  if (jwksUrl !== undefined) {
    // The key set is kept as long as a verified token (at least a second): a key
    // the provider removes stops verifying within AUTH_TOKEN_CACHE_MS.
    key = createRemoteJWKSet(new URL(jwksUrl), { cooldownDuration: options.jwksRefreshMs ?? 30_000, cacheMaxAge: Math.max(cacheMs, 1000), timeoutDuration: 5000 })
  } else {
    const bytes = new TextEncoder().encode(secret)
    key = () => bytes
  }
  const verifyOptions: JWTVerifyOptions = {
    algorithms: jwksUrl !== undefined ? ASYMMETRIC : ['HS256'],
    requiredClaims: ['exp'],
    clockTolerance: CLOCK_TOLERANCE_S,
    ...(options.issuer === undefined ? {} : { issuer: options.issuer }),
    ...(options.audience === undefined ? {} : { audience: options.audience })
  }
  const clock = options.clock ?? Date.now
  /** Verified tokens by their exact string, each trusted until an instant (epoch ms): cacheMs after its check, never past its exp. */
  const cache = new LRUCache<string, { principal: Principal, until: number }>({ max: options.cacheSize ?? 10_000 })

  function known (token: string): Principal | undefined {
    const entry = cache.get(token)
    if (entry === undefined) return undefined
    if (entry.until > clock()) return entry.principal
    cache.delete(token)
    return undefined
  }

  async function verify (token: string): Promise<Principal> {
    const principal = known(token)
    if (principal !== undefined) return principal
    const now = clock()
    let payload
    try {
      ({ payload } = await jwtVerify(token, key, { ...verifyOptions, currentDate: new Date(now) }))
    } catch (err) {
      throw refusal(err, jwksUrl !== undefined)
    }
    const verified = principalOf(payload)
    if (typeof verified === 'string') throw new UnauthenticatedError(verified)
    const until = Math.min(now + cacheMs, (payload.exp as number) * 1000)
    if (until > now) cache.set(token, { principal: verified, until })
    return verified
  }

  return { known, verify }
}
