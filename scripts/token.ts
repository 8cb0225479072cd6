/**
 * `npm run token -- --role organizer --sub alice`: prints a token the service
 * accepts, signed with AUTH_JWT_SECRET or, in development mode, with the secret
 * the service generated under DATA_DIR (./data by default). With AUTH_JWKS_URL
 * set, tokens come from the identity provider instead.
 */
import { resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { SignJWT } from 'jose'
import { devSecret } from '../lib/auth/dev-secret.ts'
import { ROLES, SUB_PATTERN, type Role } from '../lib/domain/principal.ts'
import { loadDotEnv } from '../lib/support/env-file.ts'

const USAGE = `Usage: npm run -s token -- [--sub <id>] [--role <role>]... [--ttl <span>]

  --sub <id>      the principal (default dev-user): a customer's userId, an organizer's owner id
  --role <role>   ${ROLES.join(', ')}; repeat it or separate with commas (default customer)
  --ttl <span>    lifetime: seconds, or 30m, 12h, 7d (default 12h)

Signed with AUTH_JWT_SECRET when set, else with DATA_DIR/auth-secret (the service's
development mode); like the service, reads .env (the environment wins). AUTH_ISSUER and AUTH_AUDIENCE, when set, become iss and aud.
`

function fail (message: string): never {
  process.stderr.write(`${message}\n\n${USAGE}`)
  process.exit(2)
}

let values
try {
  ({ values } = parseArgs({
    options: {
      sub: { type: 'string', default: 'dev-user' },
      role: { type: 'string', multiple: true, default: ['customer'] },
      ttl: { type: 'string', default: '12h' },
      help: { type: 'boolean', short: 'h' }
    }
  }))
} catch (err) {
  fail((err as Error).message)
}
if (values.help === true) {
  process.stdout.write(USAGE)
  process.exit(0)
}
// the service's .env: the same DATA_DIR and AUTH_* as `npm start`
try {
  loadDotEnv()
} catch (err) {
  fail((err as Error).message)
}
if (process.env.AUTH_JWKS_URL !== undefined) fail('AUTH_JWKS_URL is set: tokens come from your identity provider')
if (!SUB_PATTERN.test(values.sub)) fail('--sub must be 1-128 printable ASCII characters')
const roles = values.role.flatMap(r => r.split(',')).map(r => r.trim()).filter(Boolean)
const unknown = roles.filter(r => !(ROLES as readonly string[]).includes(r))
if (unknown.length > 0) fail(`unknown role(s): ${unknown.join(', ')}`)
const ttl = /^\d+$/.test(values.ttl) ? Number(values.ttl) : values.ttl
if (typeof ttl === 'string' && !/^\d+\s*[smhdw]$/.test(ttl)) fail('--ttl must be seconds or a number with s, m, h, d or w')

const secret = process.env.AUTH_JWT_SECRET ?? devSecret(resolve(process.env.DATA_DIR ?? './data')).secret
let jwt = new SignJWT({ roles: roles as Role[] })
  .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
  .setSubject(values.sub)
  .setIssuedAt()
  .setExpirationTime(typeof ttl === 'number' ? Math.floor(Date.now() / 1000) + ttl : ttl)
if (process.env.AUTH_ISSUER !== undefined) jwt = jwt.setIssuer(process.env.AUTH_ISSUER)
if (process.env.AUTH_AUDIENCE !== undefined) jwt = jwt.setAudience(process.env.AUTH_AUDIENCE)
process.stdout.write(`${await jwt.sign(new TextEncoder().encode(secret))}\n`)
