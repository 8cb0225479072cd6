/** Command-line options of `npm run bench`, parsed with node:util parseArgs. */
import { parseArgs } from 'node:util'

/** Seats of a section that must not sell out during a run (the API's largest capacity). */
export const BIG_CAPACITY = 1_000_000

export const SCENARIOS = ['health', 'hot', 'hot-noauth', 'spread', 'soldout', 'soldout-nocache', 'checkout', 'onsale', 'opening', 'list'] as const
export const STORES = ['embedded', 'postgres'] as const
export const BATCHES = ['1', 'default'] as const

export type ScenarioName = typeof SCENARIOS[number]
export type StoreName = typeof STORES[number]
export type BatchName = typeof BATCHES[number]

export interface BenchOptions {
  /** seconds of each measured run */
  duration: number
  /** seconds of the warm-up run before each measured run */
  warmup: number
  connections: number
  pipelining: number
  scenarios: ScenarioName[]
  stores: StoreName[]
  batches: BatchName[]
  /** bookings seeded for the list scenario */
  listBookings: number
  quick: boolean
}

export const USAGE = `Usage: npm run bench -- [options]

  --duration <s>        seconds of each measured run (default 10; 3 with --quick)
  --warmup <s>          seconds of warm-up before each measured run (default 2; 1 with --quick)
  --connections <n>     concurrent connections (default 100)
  --scenarios <list>    ${SCENARIOS.join(',')} (default: all)
                        onsale: reads, bookings, holds and confirms of those holds on one event of 20 sections,
                        a few of which sell out during the run; hot, spread and onsale also print the server's
                        CPU-ms per booking (its process_cpu_seconds_total from GET /metrics, before and after)
                        opening: bookings on one section whose sale opens halfway through the run: req/s before
                        the opening (409 SALE_NOT_OPEN), bookings/s after it, time to the first 201
  --stores <list>       ${STORES.join(',')} (default: all; postgres is skipped when PostgreSQL or Redis is unreachable)
  --batch <list>        ${BATCHES.join(',')}: BATCH_MAX=1 and/or the default BATCH_MAX (default: both; hot-noauth and soldout-nocache run with the default only)
  --list-bookings <n>   bookings seeded for the list scenario (default 100000; 10000 with --quick)
  --quick               --duration 3 --warmup 1 --list-bookings 10000: short runs for a quick look
  -h, --help            this text
`

function positive (name: string, value: string | undefined, fallback: number, { integer = false } = {}): number {
  if (value === undefined) return fallback
  const n = Number(value)
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
    throw new Error(`--${name} must be a positive ${integer ? 'integer' : 'number'}, got ${JSON.stringify(value)}`)
  }
  return n
}

function list<T extends string> (name: string, value: string | undefined, allowed: readonly T[]): T[] {
  if (value === undefined) return [...allowed]
  const items = value.split(',').map(s => s.trim()).filter(Boolean)
  const unknown = items.filter(s => !(allowed as readonly string[]).includes(s))
  if (unknown.length > 0 || items.length === 0) {
    throw new Error(`--${name}: unknown ${unknown.join(', ') || '(empty)'}; choose from ${allowed.join(',')}`)
  }
  // keep the canonical order, whatever order was typed
  return allowed.filter(a => items.includes(a))
}

/** Parses argv; throws with a message naming the option on bad input. Returns null for --help. */
export function parseOptions (argv: string[]): BenchOptions | null {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      duration: { type: 'string' },
      warmup: { type: 'string' },
      connections: { type: 'string' },
      scenarios: { type: 'string' },
      stores: { type: 'string' },
      batch: { type: 'string' },
      'list-bookings': { type: 'string' },
      quick: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false }
    }
  })
  if (values.help === true) return null
  const quick = values.quick === true
  return {
    duration: positive('duration', values.duration, quick ? 3 : 10),
    warmup: positive('warmup', values.warmup, quick ? 1 : 2),
    connections: positive('connections', values.connections, 100, { integer: true }),
    pipelining: 1,
    scenarios: list('scenarios', values.scenarios, SCENARIOS),
    stores: list('stores', values.stores, STORES),
    batches: list('batch', values.batch, BATCHES),
    listBookings: positive('list-bookings', values['list-bookings'], quick ? 10_000 : 100_000, { integer: true }),
    quick
  }
}
