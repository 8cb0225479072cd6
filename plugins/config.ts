import fastifyEnv from '@fastify/env'
import { Type, type Static } from '@sinclair/typebox'
import fp from 'fastify-plugin'
import type { StoreKind } from '../lib/store/store.ts'

export const ConfigSchema = Type.Object({
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3000 }),
  HOST: Type.String({ minLength: 1, default: '0.0.0.0' }),
  LOG_LEVEL: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map(l => Type.Literal(l)), { default: 'info' }),
  STORE: Type.Optional(Type.Union([Type.Literal('embedded'), Type.Literal('postgres'), Type.Literal('mongo')])),
  DATABASE_URL: Type.Optional(Type.String({ pattern: '^postgres(ql)?://' })),
  PG_POOL_SIZE: Type.Integer({ minimum: 1, maximum: 200, default: 10 }),
  MONGODB_URI: Type.Optional(Type.String({ pattern: '^mongodb(\\+srv)?://' })),
  MONGODB_POOL_SIZE: Type.Integer({ minimum: 1, maximum: 500, default: 20 }),
  MONGODB_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 120_000, default: 5000 }),
  DATA_DIR: Type.String({ minLength: 1, default: './data' }),
  REDIS_NODES: Type.Optional(Type.String({ pattern: '^(rediss?://[^,\\s]+)(,rediss?://[^,\\s]+)*$' })),
  LOCK_TTL_MS: Type.Integer({ minimum: 100, maximum: 600_000, default: 5000 }),
  LOCK_WAIT_MS: Type.Integer({ minimum: 0, maximum: 600_000, default: 5000 }),
  BATCH_MAX: Type.Integer({ minimum: 1, maximum: 10_000, default: 256 }),
  BATCH_CONCURRENCY: Type.Integer({ minimum: 1, maximum: 200, default: 2 }),
  SOLD_OUT_CACHE_MS: Type.Integer({ minimum: 0, maximum: 600_000, default: 1000 }),
  HOLD_TTL_MS: Type.Integer({ minimum: 1000, maximum: 86_400_000, default: 600_000 }),
  EXPIRY_SWEEP_MS: Type.Integer({ minimum: 50, maximum: 600_000, default: 1000 }),
  RATE_LIMIT_MAX: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 0 }),
  RATE_LIMIT_WINDOW_MS: Type.Integer({ minimum: 100, maximum: 86_400_000, default: 60_000 }),
  REQUEST_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 600_000, default: 30_000 }),
  HEADERS_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 600_000, default: 10_000 }),
  KEEP_ALIVE_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 3_600_000, default: 72_000 }),
  CONNECTION_TIMEOUT_MS: Type.Integer({ minimum: 0, maximum: 3_600_000, default: 120_000 }),
  MAX_CONNECTIONS: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 10_000 }),
  AUTH_JWKS_URL: Type.Optional(Type.String({ pattern: '^https?://[^\\s]+$' })),
  AUTH_JWT_SECRET: Type.Optional(Type.String({ minLength: 1, description: 'at least 32 bytes (checked by plugins/auth.ts)' })),
  AUTH_ISSUER: Type.Optional(Type.String({ minLength: 1 })),
  AUTH_AUDIENCE: Type.Optional(Type.String({ minLength: 1 })),
  AUTH_DISABLED: Type.Boolean({ default: false }),
  AUTH_JWKS_REFRESH_MS: Type.Integer({ minimum: 0, maximum: 3_600_000, default: 30_000 }),
  AUTH_TOKEN_CACHE_MS: Type.Integer({ minimum: 0, maximum: 3_600_000, default: 60_000 }),
  // token68 characters (RFC 6750): what a Bearer header can carry
  METRICS_TOKEN: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9\\-._~+/]{16,}=*$' }))
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
