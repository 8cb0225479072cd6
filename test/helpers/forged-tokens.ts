/**
 * Tokens built by hand (base64url and node:crypto), for the forgeries jose
 * refuses to produce: alg none, HS256 keyed with a public key, a payload
 * changed after signing, claims of the wrong type.
 */
import { createHmac } from 'node:crypto'

const part = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')

/** header.payload.signature with the given signature (base64url; '' for none). */
export function compactToken (header: Record<string, unknown>, payload: Record<string, unknown>, signature = ''): string {
  return `${part(header)}.${part(payload)}.${signature}`
}

/** An HS256 token whose HMAC key is any bytes (a secret, or a public key's PEM). */
export function hs256Token (header: Record<string, unknown>, payload: Record<string, unknown>, key: string | Buffer): string {
  const input = `${part({ alg: 'HS256', typ: 'JWT', ...header })}.${part(payload)}`
  return `${input}.${createHmac('sha256', key).update(input).digest('base64url')}`
}

/** The token with its payload changed and its signature kept. */
export function tamperedToken (token: string, change: (payload: Record<string, unknown>) => Record<string, unknown>): string {
  const [header, payload, signature] = token.split('.')
  return `${header}.${part(change(JSON.parse(Buffer.from(payload, 'base64url').toString())))}.${signature}`
}

/** iat now and exp in an hour, seconds since the epoch, plus claims. */
export function freshClaims (claims: Record<string, unknown>): Record<string, unknown> {
  const now = Math.floor(Date.now() / 1000)
  return { iat: now, exp: now + 3600, ...claims }
}
