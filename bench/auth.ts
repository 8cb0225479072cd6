/**
 * How benchmark servers and requests authenticate: a fresh random HS256 secret
 * for each bench run; an organizer's token creates the events, and one
 * service's token (a box office booking on behalf of users: the body keeps
 * userId) carries the bookings, the lists and the invariant checks.
 * `hot-noauth` runs its server with AUTH_DISABLED=true and sends no token.
 */
import { randomBytes } from 'node:crypto'
import type { Role } from '../lib/domain/principal.ts'
import { bearer, signToken } from '../test/helpers/tokens.ts'

export interface BenchAuth {
  /** the server's variables */
  env: Record<string, string>
  /** headers of event creation */
  organizer: Record<string, string>
  /** headers of bookings, lists and invariant checks */
  service: Record<string, string>
}

/** Tokens outlive the longest bench run. */
const TOKEN_SECONDS = 24 * 3600

export async function benchAuth (): Promise<BenchAuth> {
  const secret = randomBytes(48).toString('base64url')
  const headers = async (sub: string, role: Role): Promise<Record<string, string>> =>
    bearer(await signToken({ sub, roles: [role], secret, expiresIn: TOKEN_SECONDS }))
  return {
    env: { AUTH_JWT_SECRET: secret },
    organizer: await headers('bench-organizer', 'organizer'),
    service: await headers('bench-box-office', 'service')
  }
}

/** A server behind a gateway that authenticates: no token checked, none sent. */
export const NO_AUTH: BenchAuth = { env: { AUTH_DISABLED: 'true' }, organizer: {}, service: {} }

/** Headers as recorded with the results: a token's value is left out. */
export function recordedHeaders (headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([name, value]) =>
    [name, name.toLowerCase() === 'authorization' ? value.replace(/ .*/, ' <token>') : value]))
}
