/**
 * Tokens for tests and benchmarks: HS256 with the secret test apps and servers
 * are started with (withTestAuth), one principal per role, and the header to send.
 */
import { SignJWT } from 'jose'
import type { Role } from '../../lib/domain/principal.ts'

/** At least 32 bytes, as the service requires. */
export const TEST_SECRET = 'test-secret-0123456789-abcdefghijklmnop'

/** A test app's or server's environment: the test secret, unless the test configures auth itself. */
export function withTestAuth<T extends Record<string, string | undefined>> (env: T): T {
  return Object.keys(env).some(name => name.startsWith('AUTH_')) ? env : { AUTH_JWT_SECRET: TEST_SECRET, ...env }
}

export interface TokenOptions {
  sub: string
  /** the `roles` claim as given (left out when undefined) */
  roles?: unknown
  secret?: string
  /** seconds from now; negative for an expired token */
  expiresIn?: number
  /** any other claims (iss, aud, nbf, ...) */
  claims?: Record<string, unknown>
}

export async function signToken ({ sub, roles, secret = TEST_SECRET, expiresIn = 3600, claims = {} }: TokenOptions): Promise<string> {
  const now = Math.floor(Date.now() / 1000)
  return await new SignJWT({ ...(roles === undefined ? {} : { roles }), ...claims })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(sub)
    .setIssuedAt(now)
    .setExpirationTime(now + expiresIn)
    .sign(new TextEncoder().encode(secret))
}

/** A token of one role, `sub` defaulting to the role's name. */
export async function roleToken (role: Role, sub: string = role): Promise<string> {
  return await signToken({ sub, roles: [role] })
}

export function bearer (token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` }
}

/** The Authorization header of a token of one role (roleToken, then bearer). */
export async function roleHeaders (role: Role, sub?: string): Promise<Record<string, string>> {
  return bearer(await roleToken(role, sub))
}

/**
 * The principals the suites act as, as real clients do: an organizer creates
 * events (it owns them), a service books on behalf of the userIds a test names
 * and sees every booking, an admin may do anything.
 */
export interface Principals {
  organizer: Record<string, string>
  service: Record<string, string>
  admin: Record<string, string>
}

export async function principals (): Promise<Principals> {
  const [organizer, service, admin] = await Promise.all([roleHeaders('organizer'), roleHeaders('service'), roleHeaders('admin')])
  return { organizer, service, admin }
}
