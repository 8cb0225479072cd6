/**
 * `npm run docs:config`: writes docs/configuration.md from ConfigSchema
 * (plugins/config.ts), one table per group of variables. `--check` writes
 * nothing: it exits 1 when docs/configuration.md differs from what the schema
 * gives, or when .env.example leaves a variable out.
 * test/unit/config-reference.test.ts runs the same checks.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { ConfigSchema } from '../plugins/config.ts'

export const COMMAND = 'npm run docs:config'
export const REFERENCE_PATH = 'docs/configuration.md'
export const ENV_EXAMPLE_PATH = '.env.example'

/** The reference's sections, in order, each with its variables in order: every variable of the schema, once. */
export const GROUPS: ReadonlyArray<{ title: string, variables: readonly string[] }> = [
  { title: 'Server and logs', variables: ['PORT', 'HOST', 'LOG_LEVEL'] },
  { title: 'Store', variables: ['STORE', 'DATABASE_URL', 'PG_POOL_SIZE', 'MONGODB_URI', 'MONGODB_POOL_SIZE', 'MONGODB_TIMEOUT_MS', 'DATA_DIR'] },
  { title: 'Locks and batching', variables: ['REDIS_NODES', 'LOCK_TTL_MS', 'LOCK_WAIT_MS', 'BATCH_MAX', 'BATCH_CONCURRENCY', 'SOLD_OUT_CACHE_MS'] },
  { title: 'Holds', variables: ['HOLD_TTL_MS', 'EXPIRY_SWEEP_MS'] },
  { title: 'Waiting list', variables: ['WAITLIST_OFFER_SECONDS'] },
  { title: 'Identity', variables: ['AUTH_JWKS_URL', 'AUTH_JWT_SECRET', 'AUTH_ISSUER', 'AUTH_AUDIENCE', 'AUTH_JWKS_REFRESH_MS', 'AUTH_TOKEN_CACHE_MS', 'AUTH_DISABLED'] },
  { title: 'Rate limit', variables: ['RATE_LIMIT_MAX', 'RATE_LIMIT_WINDOW_MS'] },
  { title: 'Change feed and webhooks', variables: ['CHANGES_RETENTION_HOURS', 'WEBHOOK_ALLOW_HTTP', 'WEBHOOK_ALLOW_PRIVATE', 'WEBHOOK_TIMEOUT_MS', 'WEBHOOK_RETRY_BASE_MS', 'WEBHOOK_RETRY_MAX_MS', 'WEBHOOK_RETRY_HOURS', 'WEBHOOK_DISABLE_AFTER', 'WEBHOOK_LEASE_MS', 'WEBHOOK_POLL_MS'] },
  { title: 'Metrics', variables: ['METRICS_TOKEN'] },
  { title: 'HTTP limits', variables: ['REQUEST_TIMEOUT_MS', 'HEADERS_TIMEOUT_MS', 'KEEP_ALIVE_TIMEOUT_MS', 'CONNECTION_TIMEOUT_MS', 'MAX_CONNECTIONS'] }
]

/** The keywords of a variable's schema that the reference reads (TypeBox writes plain JSON Schema). */
interface VariableSchema {
  type?: string
  anyOf?: Array<{ const?: unknown }>
  default?: unknown
  minimum?: number
  maximum?: number
  minLength?: number
  pattern?: string
  description?: string
}

const PROPERTIES = ConfigSchema.properties as unknown as Record<string, VariableSchema>
const REQUIRED = new Set<string>(ConfigSchema.required ?? [])

/** Text for a table cell: no line breaks, `|` escaped. */
const cell = (text: string): string => text.replace(/\s*\n\s*/g, ' ').replace(/\|/g, '\\|')
const code = (value: unknown): string => `\`${String(value)}\``

/** 600000 → "10 min": a millisecond figure in the largest whole unit, when there is one above ms. */
function span (ms: number): string | undefined {
  const units: Array<[number, string]> = [[86_400_000, 'd'], [3_600_000, 'h'], [60_000, 'min'], [1000, 's']]
  for (const [size, unit] of units) if (ms >= size && ms % size === 0) return `${ms / size} ${unit}`
  return undefined
}

function typeOf (schema: VariableSchema): string {
  if (schema.anyOf !== undefined) {
    const types = new Set(schema.anyOf.map(s => typeof s.const))
    return types.size === 1 ? [...types][0] : 'any'
  }
  return schema.type ?? 'any'
}

function defaultOf (name: string, schema: VariableSchema): string {
  if (schema.default === undefined) return REQUIRED.has(name) ? '(required)' : 'unset'
  const value = code(schema.default)
  const human = name.endsWith('_MS') && typeof schema.default === 'number' ? span(schema.default) : undefined
  return human === undefined ? value : `${value} (${human})`
}

function allowedOf (name: string, schema: VariableSchema): string {
  if (schema.anyOf !== undefined) return schema.anyOf.map(s => code(s.const)).join(', ')
  if (schema.type === 'boolean') return '`true`, `false`'
  const parts: string[] = []
  if (schema.minimum !== undefined || schema.maximum !== undefined) {
    const [min, max] = [schema.minimum, schema.maximum]
    const human = (n: number): string => {
      const unit = name.endsWith('_MS') && n > 0 ? span(n) : undefined
      return unit === undefined ? String(n) : `${n} (${unit})`
    }
    if (min !== undefined && max !== undefined) parts.push(`${human(min)} to ${human(max)}`)
    else if (min !== undefined) parts.push(`at least ${human(min)}`)
    else parts.push(`at most ${human(max!)}`)
  }
  if (schema.pattern !== undefined) parts.push(`matches ${code(schema.pattern)}`)
  else if (schema.type === 'string' && (schema.minLength ?? 0) > 0) parts.push('not empty')
  return parts.join('; ') || 'any'
}

/** Every schema variable in exactly one group, every group variable in the schema, every variable described. */
function checkGroups (): void {
  const names = Object.keys(PROPERTIES)
  const grouped = GROUPS.flatMap(g => g.variables)
  const twice = grouped.filter((v, i) => grouped.indexOf(v) !== i)
  const ungrouped = names.filter(n => !grouped.includes(n))
  const unknown = grouped.filter(v => !names.includes(v))
  const undescribed = names.filter(n => (PROPERTIES[n].description ?? '').trim() === '')
  const problems = [
    ...(ungrouped.length > 0 ? [`not in any group of scripts/config-reference.ts: ${ungrouped.join(', ')}`] : []),
    ...(unknown.length > 0 ? [`in a group but not in ConfigSchema: ${unknown.join(', ')}`] : []),
    ...(twice.length > 0 ? [`in more than one group: ${twice.join(', ')}`] : []),
    ...(undescribed.length > 0 ? [`no description in plugins/config.ts: ${undescribed.join(', ')}`] : [])
  ]
  if (problems.length > 0) throw new Error(`config reference: ${problems.join('; ')}`)
}

/** docs/configuration.md as the schema gives it. */
export function renderConfigReference (): string {
  checkGroups()
  const lines = [
    '# Configuration',
    '',
    `Generated from \`ConfigSchema\` in \`plugins/config.ts\` by \`${COMMAND}\`: do not edit it by hand. Change the schema's descriptions, then run the command.`,
    '',
    'The service reads these variables at start-up from the environment and from `.env` in the',
    'working directory (a variable set in the environment wins over the file). `ENV_FILE` names another',
    'file instead, which must exist (`ENV_FILE=` reads none). `.env.example` lists every variable with the values of',
    '`docker compose up -d`. @fastify/env validates them against the schema: a bad value stops',
    'start-up with one line naming the variable, and the process exits 1.',
    '',
    'Rules between variables, checked at start-up too:',
    '',
    '- `HEADERS_TIMEOUT_MS` must not exceed `REQUEST_TIMEOUT_MS`.',
    '- `CONNECTION_TIMEOUT_MS` is 0 or longer than `LOCK_WAIT_MS` + 1000.',
    '- `STORE=postgres` needs `DATABASE_URL`; `STORE=mongo` needs `MONGODB_URI`.',
    '- `AUTH_JWKS_URL` and `AUTH_JWT_SECRET` are not both set, and neither is set with `AUTH_DISABLED=true`.',
    '- `AUTH_JWT_SECRET` has at least 32 bytes.',
    '',
    'Not part of the schema: `ENV_FILE` (read before it) and `LOG_PRETTY=true` (human-readable',
    'logs, which `npm run dev` sets).'
  ]
  for (const group of GROUPS) {
    lines.push('', `## ${group.title}`, '', '| variable | type | default | allowed | description |', '|:---|:---|:---|:---|:---|')
    for (const name of group.variables) {
      const schema = PROPERTIES[name]
      lines.push(`| ${[code(name), typeOf(schema), defaultOf(name, schema), allowedOf(name, schema), schema.description!].map(cell).join(' | ')} |`)
    }
  }
  return `${lines.join('\n')}\n`
}

/** Schema variables that .env.example neither sets nor shows commented out (`NAME=` or `# NAME=` at a line's start). */
export function missingFromEnvExample (example: string): string[] {
  return Object.keys(PROPERTIES).filter(name => !new RegExp(`^(# )?${name}=`, 'm').test(example))
}

const root = (path: string): string => fileURLToPath(new URL(`../${path}`, import.meta.url))

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const rendered = renderConfigReference()
  if (process.argv.includes('--check')) {
    const problems: string[] = []
    let current = ''
    try { current = readFileSync(root(REFERENCE_PATH), 'utf8') } catch {}
    if (current !== rendered) problems.push(`${REFERENCE_PATH} is out of date: run \`${COMMAND}\``)
    const missing = missingFromEnvExample(readFileSync(root(ENV_EXAMPLE_PATH), 'utf8'))
    if (missing.length > 0) problems.push(`${ENV_EXAMPLE_PATH} does not name ${missing.join(', ')}`)
    for (const problem of problems) process.stderr.write(`${problem}\n`)
    process.exit(problems.length > 0 ? 1 : 0)
  }
  writeFileSync(root(REFERENCE_PATH), rendered)
  const missing = missingFromEnvExample(readFileSync(root(ENV_EXAMPLE_PATH), 'utf8'))
  process.stdout.write(`wrote ${REFERENCE_PATH}\n`)
  if (missing.length > 0) process.stderr.write(`note: ${ENV_EXAMPLE_PATH} does not name ${missing.join(', ')}\n`)
}
