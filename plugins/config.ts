import { resolve } from 'node:path'
import fastifyEnv from '@fastify/env'
import { Type, type Static } from '@sinclair/typebox'
import fp from 'fastify-plugin'
import type { StoreKind } from '../lib/store/store.ts'
import { DEFAULT_OFFER_SECONDS } from '../lib/domain/waitlist.ts'

export const ConfigSchema = Type.Object({
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3000, description: 'TCP port the HTTP server listens on.' }),
  HOST: Type.String({ minLength: 1, default: '0.0.0.0', description: 'Interface to listen on. 0.0.0.0 listens on all of them (so Prometheus in Docker can scrape the host).' }),
  LOG_LEVEL: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map(l => Type.Literal(l)), {
    default: 'info',
    description: 'pino log level of the JSON logs on stdout. `info` writes one line per request and one per booking outcome.'
  }),
  STORE: Type.Optional(Type.Union([Type.Literal('embedded'), Type.Literal('postgres'), Type.Literal('mongo')], {
    description: 'Which store keeps the data. Unset: `mongo` if MONGODB_URI is set, else `postgres` if DATABASE_URL is set, else `embedded`. `postgres` needs DATABASE_URL, `mongo` needs MONGODB_URI.'
  })),
  DATABASE_URL: Type.Optional(Type.String({
    pattern: '^postgres(ql)?://',
    description: 'PostgreSQL connection URL. Used when STORE is `postgres`, or when STORE and MONGODB_URI are unset.'
  })),
  PG_POOL_SIZE: Type.Integer({
    minimum: 1, maximum: 200, default: 10,
    description: 'Connections in the PostgreSQL pool of each instance (PostgreSQL store). An instance never runs more batches at once than this.'
  }),
  MONGODB_URI: Type.Optional(Type.String({
    pattern: '^mongodb(\\+srv)?://',
    description: 'MongoDB connection URI. It must reach a replica set (the store uses transactions). Used when STORE is `mongo`, or when STORE is unset.'
  })),
  MONGODB_POOL_SIZE: Type.Integer({
    minimum: 1, maximum: 500, default: 20,
    description: 'Connections in the MongoDB pool of each instance (MongoDB store). An instance never runs more batches at once than this.'
  }),
  MONGODB_TIMEOUT_MS: Type.Integer({
    minimum: 100, maximum: 120_000, default: 5000,
    description: 'MongoDB server selection and connect timeout, in milliseconds (MongoDB store).'
  }),
  DATA_DIR: Type.String({
    minLength: 1, default: './data',
    description: 'Directory of the embedded store, and of the generated token secret (`auth-secret`) in development mode. One process per directory: a second one exits at start-up.'
  }),
  REDIS_NODES: Type.Optional(Type.String({
    pattern: '^(rediss?://[^,\\s]+)(,rediss?://[^,\\s]+)*$',
    description: 'Comma-separated `redis://` or `rediss://` URLs: one Redis server, or several independent ones. The section locks (RedLock) need a quorum of N/2+1 of them; returned seats and the rate limit are counted there too. Unset: an in-process lock, for one instance only.'
  })),
  LOCK_TTL_MS: Type.Integer({
    minimum: 100, maximum: 600_000, default: 5000,
    description: 'Lifetime of a lock (a section\'s, the expiry sweeper\'s), in milliseconds: the longest a crashed holder can block it.'
  }),
  LOCK_WAIT_MS: Type.Integer({
    minimum: 0, maximum: 600_000, default: 5000,
    description: 'Longest a request waits for its section (queue and lock), in milliseconds, before 503 BUSY with Retry-After. Its work then has 500 ms more: every request is answered in time, whatever Redis or the database do.'
  }),
  BATCH_MAX: Type.Integer({
    minimum: 1, maximum: 10_000, default: 256,
    description: 'Most queued operations (bookings, holds, confirms, cancellations) decided together in one batch, over all its sections. 1: one lock and one transaction per operation.'
  }),
  BATCH_CONCURRENCY: Type.Integer({
    minimum: 1, maximum: 200, default: 2,
    description: 'Most batches one instance runs at once: never more than PG_POOL_SIZE or MONGODB_POOL_SIZE, one on the embedded store. With BATCH_MAX=1, one per connection instead. A batch begins beside a running one only with a quarter of BATCH_MAX ready, or once the oldest of them has waited 10 ms.'
  }),
  SOLD_OUT_CACHE_MS: Type.Integer({
    minimum: 0, maximum: 600_000, default: 1000,
    description: 'Longest a section seen sold out is answered 409 from memory (no lock, no database), in milliseconds; never past its first hold\'s expiry. Seats returned on any instance end it at once. 0: no memory.'
  }),
  HOLD_TTL_MS: Type.Integer({
    minimum: 1000, maximum: 86_400_000, default: 600_000,
    description: 'How long a hold keeps its seats, in milliseconds, when its event sets no `holdSeconds`.'
  }),
  WAITLIST_OFFER_SECONDS: Type.Integer({
    minimum: 1, maximum: 86_400, default: DEFAULT_OFFER_SECONDS,
    description: 'How long a waiting-list offer (seats held for the next in line) lasts, in seconds, when its event sets no `waitlistOfferSeconds`; then its seats go to the next in line.'
  }),
  EXPIRY_SWEEP_MS: Type.Integer({
    minimum: 50, maximum: 600_000, default: 1000,
    description: 'An expired hold\'s seats are back on sale no later than this after its `expiresAt`, in milliseconds, even with no traffic. Every instance ticks twice per period; the one that gets the sweeper lock sweeps.'
  }),
  RATE_LIMIT_MAX: Type.Integer({
    minimum: 0, maximum: 1_000_000, default: 0,
    description: 'Booking requests (`POST /bookings`, `POST /api/bookings`) allowed per principal per window; beyond it 429 RATE_LIMITED with Retry-After. The principal is the token\'s `sub` (the client address with AUTH_DISABLED). Counted in Redis when REDIS_NODES is set, so the limit holds across instances. 0: no limit.'
  }),
  RATE_LIMIT_WINDOW_MS: Type.Integer({
    minimum: 100, maximum: 86_400_000, default: 60_000,
    description: 'The rate limit\'s window, in milliseconds.'
  }),
  REQUEST_TIMEOUT_MS: Type.Integer({
    minimum: 100, maximum: 600_000, default: 30_000,
    description: 'A request, headers and body, must arrive whole within this, in milliseconds; else 408 REQUEST_TIMEOUT and the connection is closed.'
  }),
  HEADERS_TIMEOUT_MS: Type.Integer({
    minimum: 100, maximum: 600_000, default: 10_000,
    description: 'A request\'s headers must arrive within this, in milliseconds. At most REQUEST_TIMEOUT_MS.'
  }),
  KEEP_ALIVE_TIMEOUT_MS: Type.Integer({
    minimum: 100, maximum: 3_600_000, default: 72_000,
    description: 'An idle keep-alive connection is closed after this, in milliseconds. Keep it longer than the load balancer\'s idle timeout, so the balancer closes first.'
  }),
  CONNECTION_TIMEOUT_MS: Type.Integer({
    minimum: 0, maximum: 3_600_000, default: 120_000,
    description: 'A connection with nothing sent either way for this long is closed, in milliseconds. 0: never; else it must be longer than LOCK_WAIT_MS + 1000.'
  }),
  MAX_CONNECTIONS: Type.Integer({
    minimum: 1, maximum: 1_000_000, default: 10_000,
    description: 'Most connections open at once. Beyond it a new connection is closed as soon as it is accepted and counted in `http_connections_dropped_total`. Keep it under the process\'s open-file limit.'
  }),
  AUTH_JWKS_URL: Type.Optional(Type.String({
    pattern: '^https?://[^\\s]+$',
    description: 'An identity provider\'s JWKS URL: tokens must be signed RS256, ES256 or EdDSA with one of its keys (fetched, cached, fetched again for an unknown `kid`). Set this or AUTH_JWT_SECRET, not both; neither is development mode.'
  })),
  AUTH_JWT_SECRET: Type.Optional(Type.String({
    minLength: 1,
    description: 'A shared HS256 secret, at least 32 bytes (checked at start-up). Set this or AUTH_JWKS_URL, not both; neither is development mode.'
  })),
  AUTH_ISSUER: Type.Optional(Type.String({ minLength: 1, description: 'When set, a token\'s `iss` must be this.' })),
  AUTH_AUDIENCE: Type.Optional(Type.String({ minLength: 1, description: 'When set, a token\'s `aud` must name this.' })),
  AUTH_DISABLED: Type.Boolean({
    default: false,
    description: '`true`: no token is checked (a warning is logged at start) and `userId` comes from the request body. For a service behind a gateway that authenticates. Not with AUTH_JWKS_URL or AUTH_JWT_SECRET.'
  }),
  AUTH_JWKS_REFRESH_MS: Type.Integer({
    minimum: 0, maximum: 3_600_000, default: 30_000,
    description: 'Least time between two JWKS fetches for a `kid` the cached keys lack, in milliseconds: a flood of made-up `kid`s costs one fetch per interval.'
  }),
  AUTH_TOKEN_CACHE_MS: Type.Integer({
    minimum: 0, maximum: 3_600_000, default: 60_000,
    description: 'How long a verified token is trusted without a new signature check, in milliseconds, never past its `exp`. A key removed from the JWKS stops working within this. 0: every request is checked.'
  }),
  WEBHOOK_TIMEOUT_MS: Type.Integer({
    minimum: 100, maximum: 60_000, default: 10_000,
    description: 'A webhook delivery counts when a 2xx answer comes within this many milliseconds (connect included); else it failed and is tried again.'
  }),
  WEBHOOK_RETRY_BASE_MS: Type.Integer({
    minimum: 10, maximum: 3_600_000, default: 5000,
    description: 'Wait before a failed webhook delivery is tried again, in milliseconds; doubled after each failure in a row (with jitter), up to WEBHOOK_RETRY_MAX_MS.'
  }),
  WEBHOOK_RETRY_MAX_MS: Type.Integer({
    minimum: 10, maximum: 86_400_000, default: 3_600_000,
    description: 'Longest wait between two tries of a webhook delivery, in milliseconds.'
  }),
  WEBHOOK_RETRY_HOURS: Type.Number({
    minimum: 0.001, maximum: 720, default: 24,
    description: 'A change whose delivery keeps failing is given up this many hours after its first failure; the endpoint goes on with the next change.'
  }),
  WEBHOOK_DISABLE_AFTER: Type.Integer({
    minimum: 1, maximum: 10_000, default: 50,
    description: 'Failed deliveries in a row that disable a webhook endpoint (GET /api/webhooks/{id} shows `disabled` and the last error). A 410 Gone answer disables it at once.'
  }),
  WEBHOOK_ALLOW_HTTP: Type.Boolean({
    default: false,
    description: '`true`: webhook URLs may be http, not only https (a receiver on a private network, tests).'
  }),
  WEBHOOK_ALLOW_PRIVATE: Type.Boolean({
    default: false,
    description: '`true`: webhook deliveries may reach private, loopback and link-local addresses. Otherwise the address a URL resolves to is checked as the connection is made, so a name that resolves to one later is refused too.'
  }),
  WEBHOOK_LEASE_MS: Type.Integer({
    minimum: 500, maximum: 600_000, default: 30_000,
    description: 'How long an instance holds a webhook endpoint (one instance delivers it at a time). An instance that dies is replaced within this, and the deliveries it had not recorded are sent again.'
  }),
  WEBHOOK_POLL_MS: Type.Integer({
    minimum: 10, maximum: 60_000, default: 500,
    description: 'How often each instance looks for webhook endpoints with changes to deliver, in milliseconds.'
  }),
  CHANGES_RETENTION_HOURS: Type.Number({
    minimum: 0.001, maximum: 87_600, default: 168,
    description: 'Changes older than this, and delivered to every enabled webhook endpoint, are deleted from the change feed (in small batches).'
  }),
  // token68 characters (RFC 6750): what a Bearer header can carry
  METRICS_TOKEN: Type.Optional(Type.String({
    pattern: '^[A-Za-z0-9\\-._~+/]{16,}=*$',
    description: 'When set, `GET /metrics` needs `Authorization: Bearer <METRICS_TOKEN>` (at least 16 characters); unset, it is open.'
  }))
})

export type RawConfig = Static<typeof ConfigSchema>
export type Config = RawConfig & { STORE: StoreKind }

declare module 'fastify' {
  interface FastifyInstance {
    config: Config
  }
}

/** Rules between variables, which the schema cannot say: the message names the variables. */
function checkTogether (config: RawConfig): void {
  if (config.HEADERS_TIMEOUT_MS > config.REQUEST_TIMEOUT_MS) {
    throw new Error(`HEADERS_TIMEOUT_MS (${config.HEADERS_TIMEOUT_MS}) must not exceed REQUEST_TIMEOUT_MS (${config.REQUEST_TIMEOUT_MS})`)
  }
  // a booking may wait LOCK_WAIT_MS plus a second with nothing sent on its connection
  if (config.CONNECTION_TIMEOUT_MS !== 0 && config.CONNECTION_TIMEOUT_MS <= config.LOCK_WAIT_MS + 1000) {
    throw new Error(`CONNECTION_TIMEOUT_MS (${config.CONNECTION_TIMEOUT_MS}) must be 0 (none) or longer than LOCK_WAIT_MS + 1000 (${config.LOCK_WAIT_MS + 1000})`)
  }

  // a round of deliveries runs at most half a lease, plus the one delivery under way
  if (config.WEBHOOK_LEASE_MS <= 2 * config.WEBHOOK_TIMEOUT_MS) {
    throw new Error(`WEBHOOK_LEASE_MS (${config.WEBHOOK_LEASE_MS}) must be longer than twice WEBHOOK_TIMEOUT_MS (${2 * config.WEBHOOK_TIMEOUT_MS})`)
  }
}

/** The deployment's database: its store kind and address, without credentials or options (instances may log in as different users). */
export function databaseOf (config: Config): string {
  const address = config.STORE === 'postgres' ? config.DATABASE_URL : config.STORE === 'mongo' ? config.MONGODB_URI : resolve(config.DATA_DIR)
  return `${config.STORE} ${(address ?? '').replace(/\/\/[^@/]*@/, '//').replace(/\?.*$/, '')}`
}

/** An explicit STORE wins; else MongoDB if MONGODB_URI is set, PostgreSQL if DATABASE_URL is, else embedded. */
function resolveStore (config: RawConfig): StoreKind {
  return config.STORE ?? (config.MONGODB_URI !== undefined ? 'mongo' : config.DATABASE_URL !== undefined ? 'postgres' : 'embedded')
}

export interface ConfigPluginOptions {
  /** where variables come from; process.env when absent (tests pass their own) */
  env?: Record<string, string | undefined>
}

/** Loads and validates configuration: a bad value stops start-up with a message naming the variable. */
export default fp<ConfigPluginOptions>(async (fastify, opts) => {
  await fastify.register(fastifyEnv, {
    confKey: 'config',
    schema: ConfigSchema,
    data: opts.env ?? process.env
  })
  checkTogether(fastify.config)
  fastify.config.STORE = resolveStore(fastify.config)
  fastify.log.level = fastify.config.LOG_LEVEL
}, { name: 'config' })
