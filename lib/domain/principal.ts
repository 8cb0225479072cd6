/**
 * Who is asking: the token's `sub` and its roles. Every write and every
 * private read is decided for a principal (lib/domain/access.ts).
 */
export const ROLES = ['customer', 'organizer', 'service', 'admin'] as const
export type Role = typeof ROLES[number]

export interface Principal {
  /** the token's `sub`: a customer's own userId, an organizer's events' owner */
  readonly sub: string
  readonly roles: readonly Role[]
}

/** A `sub` is also a userId and an owner: printable ASCII, 1 to 128 characters. */
export const SUB_PATTERN = /^[\x21-\x7E]{1,128}$/

/** Behind a gateway that authenticates (AUTH_DISABLED=true): every request may do anything, as in the seed. */
export const GATEWAY: Principal = Object.freeze({ sub: '', roles: Object.freeze(['admin'] as const) })

export function hasRole (principal: Principal, ...roles: Role[]): boolean {
  return roles.some(role => principal.roles.includes(role))
}

/**
 * The principal of verified claims, or a reason it has none: `sub` must be a
 * usable id; `roles`, when given, an array of strings (unknown ones are
 * ignored; none known = customer).
 */
export function principalOf (claims: { sub?: unknown, roles?: unknown }): Principal | string {
  if (typeof claims.sub !== 'string' || !SUB_PATTERN.test(claims.sub)) return 'token sub must be 1-128 printable ASCII characters'
  if (claims.roles === undefined) return { sub: claims.sub, roles: ['customer'] }
  if (!Array.isArray(claims.roles) || !claims.roles.every(r => typeof r === 'string')) return 'token roles must be an array of strings'
  const roles = ROLES.filter(role => (claims.roles as string[]).includes(role))
  return { sub: claims.sub, roles: roles.length === 0 ? ['customer'] : roles }
}
