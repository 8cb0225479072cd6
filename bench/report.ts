/**
 * The report: ratios measured in the same run (each scenario against the
 * HTTP ceiling `health`, default batching against BATCH_MAX=1, `hot` with
 * authentication against `hot-noauth` without), the table as plain text and
 * markdown, the checkout lines (holds/s and confirms/s), the onsale and opening
 * lines, the server's CPU per booking, the targets, and the JSON with every raw number.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import { join } from 'node:path'
import type { BenchOptions, StoreName } from './options.ts'
import { cpuLine } from './cpu.ts'
import type { LoadResult } from './load.ts'
import { openingSummary } from './opening-check.ts'
import { LIST_USERS, labelOf, reqPerSecOf, serverErrors, writesPerSec, writesSeats, type Row } from './scenarios.ts'
import { inheritedEnv } from './server.ts'

export interface Ratios {
  /** req/s of the row (opening: before the sale opened) ÷ mean req/s of the `health` runs on the same store */
  vsHealth: number | null
  /** bookings/s of the default batch ÷ bookings/s of BATCH_MAX=1, same scenario and store (default rows only) */
  batchGain: number | null
  /** bookings/s of `hot` ÷ bookings/s of `hot-noauth` (AUTH_DISABLED=true), same store, default batch (the hot default row only) */
  vsNoAuth: number | null
}

export function computeRatios (rows: Row[]): Map<Row, Ratios> {
  const out = new Map<Row, Ratios>()
  for (const row of rows) {
    const healthRuns = rows.filter(r => r.scenario === 'health' && r.store === row.store && r.run !== null).map(r => r.run!.reqPerSec)
    const ceiling = healthRuns.length === 0 ? 0 : healthRuns.reduce((a, b) => a + b, 0) / healthRuns.length
    const single = rows.find(r => r.scenario === row.scenario && r.store === row.store && r.batch === '1' && r.run !== null)
    const perSecond = reqPerSecOf(row)
    const vsHealth = perSecond !== null && ceiling > 0 ? perSecond / ceiling : null
    const perSec = writesPerSec(row)
    const singlePerSec = single === undefined ? null : writesPerSec(single)
    const batchGain = row.batch === 'default' && perSec !== null && singlePerSec !== null && singlePerSec > 0
      ? perSec / singlePerSec
      : null
    const noAuth = rows.find(r => r.scenario === 'hot-noauth' && r.store === row.store && r.batch === 'default' && r.run !== null)
    const vsNoAuth = row.scenario === 'hot' && row.batch === 'default' && row.run !== null && noAuth?.run != null && noAuth.run.createdPerSec > 0
      ? row.run.createdPerSec / noAuth.run.createdPerSec
      : null
    out.set(row, { vsHealth, batchGain, vsNoAuth })
  }
  return out
}

// one decimal: a target of 25 % missed by a hair must not print as "25%"
/** What a row's CPU is divided by, when not bookings. */
const CPU_UNIT: Record<string, string> = { onsale: 'booking or hold', 'checkout-hold': 'hold', 'checkout-confirm': 'confirm' }

const pct = (x: number | null): string => x === null ? 'n/a' : `${(x * 100).toFixed(1)}%`

/** What authentication costs on the store of a hot default row that has a hot-noauth row beside it; null otherwise. */
function authCost (row: Row, ratios: Map<Row, Ratios>, rows: Row[]): string | null {
  const { vsNoAuth } = ratios.get(row)!
  const noAuth = rows.find(r => r.scenario === 'hot-noauth' && r.store === row.store && r.batch === 'default')
  if (vsNoAuth === null || noAuth?.run == null) return null
  return `${pct(vsNoAuth)} (hot ${row.run!.createdPerSec.toFixed(0)} bookings/s ÷ hot-noauth ${noAuth.run.createdPerSec.toFixed(0)} bookings/s)`
}

function nonOk (result: LoadResult | null): string {
  if (result === null) return '-'
  const parts = Object.entries(result.status)
    .filter(([code]) => !code.startsWith('2'))
    .sort(([a], [b]) => Number(a) - Number(b))
    .map(([code, n]) => `${code}: ${n}`)
  if (result.errors > 0) parts.push(`err: ${result.errors}`)
  return parts.length === 0 ? '-' : parts.join(', ')
}

function invariantCell (row: Row): string {
  if (row.error !== undefined) return 'ERROR'
  if (row.invariant === null) return '-'
  const verdict = row.invariant.ok ? 'ok' : 'FAIL'
  return row.seed !== null ? `${verdict} (seed)` : verdict
}

const COLUMNS = [
  { title: 'scenario', right: false },
  { title: 'store', right: false },
  { title: 'batch', right: false },
  { title: 'vs health', right: true },
  { title: 'default/b1', right: true },
  { title: 'req/s', right: true },
  { title: 'bookings/s', right: true },
  { title: 'p50 ms', right: true },
  { title: 'p99 ms', right: true },
  { title: 'non-2xx', right: false },
  { title: 'invariant', right: false }
]

function cells (row: Row, ratios: Ratios): string[] {
  const run = row.run
  return [
    row.scenario,
    row.store,
    row.batch,
    ratios.vsHealth === null ? '-' : `${(ratios.vsHealth * 100).toFixed(0)}%`,
    ratios.batchGain === null ? '-' : `${ratios.batchGain.toFixed(1)}x`,
    reqPerSecOf(row)?.toFixed(0) ?? '-',
    writesPerSec(row)?.toFixed(0) ?? '-',
    run === null ? '-' : String(run.latencyMs.p50),
    run === null ? '-' : String(run.latencyMs.p99),
    nonOk(run),
    invariantCell(row)
  ]
}

export function textTable (rows: Row[], ratios: Map<Row, Ratios>): string {
  const body = rows.map(r => cells(r, ratios.get(r)!))
  const widths = COLUMNS.map((c, i) => Math.max(c.title.length, ...body.map(b => b[i].length)))
  const line = (values: string[]): string =>
    values.map((v, i) => COLUMNS[i].right ? v.padStart(widths[i]) : v.padEnd(widths[i])).join('  ').trimEnd()
  return [line(COLUMNS.map(c => c.title)), widths.map(w => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n')
}

export function markdownTable (rows: Row[], ratios: Map<Row, Ratios>): string {
  const head = `| ${COLUMNS.map(c => c.title).join(' | ')} |`
  const rule = `|${COLUMNS.map(c => c.right ? '---:' : ':---').join('|')}|`
  return [head, rule, ...rows.map(r => `| ${cells(r, ratios.get(r)!).join(' | ')} |`)].join('\n')
}

/** One checkout row as a sentence: holds/s or confirms/s, its share of health, p99. */
function checkoutPart (row: Row | undefined, ratios: Map<Row, Ratios>, unit: string): string {
  if (row?.run == null) return `${unit} n/a${row?.error === undefined ? '' : ' (did not complete)'}`
  return `${writesPerSec(row)!.toFixed(0)} ${unit} (${pct(ratios.get(row)!.vsHealth)} of health, p99 ${row.run.latencyMs.p99} ms)`
}

/**
 * `onsale on postgres, batch default: N req/s (x% of health), bookings+holds M/s, confirms K/s, reads R/s,
 * p99 y ms; sections sold out: s of 20 (...); invariant ok`. A section counts as sold out once it answered 409 SOLD_OUT.
 */
export function onsaleLine (row: Row, vsHealth: number | null): string {
  const head = `onsale on ${row.store}, batch ${row.batch}`
  const run = row.run
  const stats = row.onsale?.run
  if (run == null || stats == null) return `${head}: n/a${row.error === undefined ? '' : ' (did not complete)'}`
  const perSec = (answers: Record<string, number>): string => ((answers['200'] ?? 0) / run.seconds).toFixed(0)
  const times = Object.values(stats.soldOutAtSeconds)
  const when = times.length === 0 ? '' : ` (first 409 at ${Math.min(...times).toFixed(1)} to ${Math.max(...times).toFixed(1)} s, ${stats.smallCapacity} seat${stats.smallCapacity === 1 ? '' : 's'} each)`
  const invariant = row.invariant === null ? 'not checked' : row.invariant.ok ? 'ok' : 'FAILED'
  return `${head}: ${run.reqPerSec.toFixed(0)} req/s (${pct(vsHealth)} of health), bookings+holds ${run.createdPerSec.toFixed(0)}/s, ` +
    `confirms ${perSec(stats.answers.confirm)}/s, reads ${perSec(stats.answers.read)}/s, p99 ${run.latencyMs.p99} ms; ` +
    `sections sold out: ${times.length} of ${stats.sections}${when}; invariant ${invariant}`
}

/**
 * `opening on postgres, batch default: before the opening N req/s (x% of health; soldout y%; ...), p99 a ms;
 * after it M bookings/s, p99 b ms; first 201 +t ms after salesStart (createdAt +c ms); 5xx: 0; invariant ok`
 * (soldout: the same store and batch, when it ran).
 */
export function openingLine (row: Row, ratios: Map<Row, Ratios>, rows: Row[]): string {
  const head = `opening on ${row.store}, batch ${row.batch}`
  const stats = row.opening?.run
  if (row.run === null || stats == null) return `${head}: n/a${row.error === undefined ? '' : ' (did not complete)'}`
  const soldout = rows.find(r => r.scenario === 'soldout' && r.store === row.store && r.batch === row.batch && r.run !== null)
  const share = `${pct(ratios.get(row)!.vsHealth)} of health` + (soldout === undefined ? '' : `; soldout ${pct(ratios.get(soldout)?.vsHealth ?? null)}`)
  const invariant = row.invariant === null ? 'not checked' : row.invariant.ok ? 'ok (capacity == remaining + held + sold, no booking before salesStart)' : 'FAILED'
  return `${head}: ${openingSummary(stats, share)}; 5xx: ${serverErrors(row.warmup) + serverErrors(row.run)}; invariant ${invariant}`
}

/** Lines that go under the table: the checkout, onsale and opening lines, what authentication costs, what the list rows ran on, the CPU per booking, rows that could not run. */
export function tableNotes (rows: Row[], ratios: Map<Row, Ratios>): string[] {
  const out: string[] = []
  for (const row of rows) {
    if (row.scenario === 'checkout-hold') {
      const confirm = rows.find(r => r.scenario === 'checkout-confirm' && r.store === row.store && r.batch === row.batch)
      out.push(`checkout on ${row.store}, batch ${row.batch}: ${checkoutPart(row, ratios, 'holds/s')}, then ${checkoutPart(confirm, ratios, 'confirms/s')}; ` +
        `invariant ${row.invariant === null ? 'not checked' : row.invariant.ok ? 'ok (capacity == remaining + held + sold, every 200 confirm confirmed)' : 'FAILED'}`)
    }
    if (row.scenario === 'onsale') out.push(onsaleLine(row, ratios.get(row)!.vsHealth))
    if (row.scenario === 'opening') out.push(openingLine(row, ratios, rows))
    const cost = authCost(row, ratios, rows)
    if (cost !== null) out.push(`auth on / AUTH_DISABLED on ${row.store}: ${cost}`)
    if (row.scenario === 'list' && row.seed !== null) {
      const seed = row.seed
      out.push(`list, list-user on ${row.store}: ${seed.status['201'] ?? 0} bookings seeded through POST /bookings ` +
        `(${Math.min(LIST_USERS, seed.status['201'] ?? 0)} users), in ${seed.seconds.toFixed(1)} s = ${seed.createdPerSec.toFixed(0)} bookings/s (not measured)`)
    }
    if (row.error !== undefined) out.push(`${labelOf(row)}: did not complete: ${row.error.split('\n')[0]}`)
  }
  // together, as one comparison
  for (const row of rows) if (row.cpu !== null) out.push(cpuLine(labelOf(row), row.cpu, CPU_UNIT[row.scenario] ?? 'booking'))
  return out
}

export interface Target {
  store: StoreName
  target: string
  measured: string
  /** null when the rows it needs were not run */
  met: boolean | null
}

/** The targets, evaluated per store (the issue states them for PostgreSQL + Redis). */
export function evaluateTargets (rows: Row[], ratios: Map<Row, Ratios>): Target[] {
  const out: Target[] = []
  const stores = [...new Set(rows.map(r => r.store))]
  for (const store of stores) {
    const find = (scenario: string, batch: string): Row | undefined => rows.find(r => r.store === store && r.scenario === scenario && r.batch === batch && r.run !== null)
    const hot = find('hot', 'default')
    if (hot !== undefined) {
      const { batchGain, vsHealth } = ratios.get(hot)!
      out.push({ store, target: 'hot default bookings/s >= 10x BATCH_MAX=1', measured: batchGain === null ? 'n/a' : `${batchGain.toFixed(1)}x`, met: batchGain === null ? null : batchGain >= 10 })
      out.push({ store, target: 'hot default req/s >= 25% of health', measured: pct(vsHealth), met: vsHealth === null ? null : vsHealth >= 0.25 })
      out.push({ store, target: 'hot default p99 <= 50 ms', measured: `${hot.run!.latencyMs.p99} ms`, met: hot.run!.latencyMs.p99 <= 50 })
      const { vsNoAuth } = ratios.get(hot)!
      if (vsNoAuth !== null) out.push({ store, target: 'auth on >= 90% of AUTH_DISABLED (hot bookings/s)', measured: authCost(hot, ratios, rows)!, met: vsNoAuth >= 0.9 })
    }
    for (const batch of ['default', '1']) {
      const soldout = find('soldout', batch)
      if (soldout === undefined) continue
      const { vsHealth } = ratios.get(soldout)!
      out.push({ store, target: `soldout batch ${batch} req/s >= 60% of health`, measured: pct(vsHealth), met: vsHealth === null ? null : vsHealth >= 0.6 })
    }
    const nocache = find('soldout-nocache', 'default')
    const memory = find('soldout', 'default')
    if (nocache !== undefined && memory !== undefined) {
      const gain = memory.run!.reqPerSec / nocache.run!.reqPerSec
      out.push({ store, target: 'soldout (memory on) req/s vs SOLD_OUT_CACHE_MS=0, same run', measured: `${gain.toFixed(1)}x (${memory.run!.reqPerSec.toFixed(0)} vs ${nocache.run!.reqPerSec.toFixed(0)} req/s)`, met: null })
    }
    // spread: demand over 100 sections, decided in batches across them
    for (const scenario of ['spread', 'checkout-hold', 'checkout-confirm']) {
      const row = find(scenario, 'default')
      if (row === undefined) continue
      const { vsHealth } = ratios.get(row)!
      out.push({ store, target: `${scenario} default req/s >= 25% of health`, measured: pct(vsHealth), met: vsHealth === null ? null : vsHealth >= 0.25 })
      out.push({ store, target: `${scenario} default p99 <= 50 ms`, measured: `${row.run!.latencyMs.p99} ms`, met: row.run!.latencyMs.p99 <= 50 })
    }
    const booking = rows.filter(r => r.store === store && writesSeats(r.scenario) && r.run !== null)
    if (booking.length > 0) {
      const errors = booking.reduce((sum, r) => sum + serverErrors(r.warmup) + serverErrors(r.run), 0)
      out.push({ store, target: 'zero 5xx (503 included) in booking scenarios', measured: String(errors), met: errors === 0 })
    }
  }
  return out
}

export function targetLines (targets: Target[]): string[] {
  return targets.map(t => `${t.met === null ? 'n/a ' : t.met ? 'met ' : 'MISS'}  ${t.store.padEnd(8)}  ${t.target.padEnd(49)}  ${t.measured}`)
}

export interface Environment {
  timestamp: string
  node: string
  cpu: string
  cores: number
  platform: string
  totalMemoryMiB: number
  loadAverageAtStart: number[]
  autocannon: string
}

export function environment (): Environment {
  const require = createRequire(import.meta.url)
  const cpus = os.cpus()
  return {
    timestamp: new Date().toISOString(),
    node: process.version,
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    totalMemoryMiB: Math.round(os.totalmem() / 2 ** 20),
    loadAverageAtStart: os.loadavg().map(x => Math.round(x * 100) / 100),
    autocannon: (require('autocannon/package.json') as { version: string }).version
  }
}

export function headerLine (env: Environment, opts: BenchOptions): string {
  const inherited = Object.entries(inheritedEnv()).map(([k, v]) => `${k}=${v}`).join(' ')
  return `${env.timestamp}  node ${env.node}  ${env.cpu} x ${env.cores}  load avg ${env.loadAverageAtStart.join(' ')}  ` +
    `autocannon ${env.autocannon}: ${opts.connections} connections, pipelining ${opts.pipelining}, ${opts.duration} s measured after ${opts.warmup} s warm-up` +
    (inherited === '' ? '' : `  servers with ${inherited}`)
}

export interface Report {
  env: Environment
  options: BenchOptions
  skipped: Record<string, string>
  rows: Row[]
  ratios: Map<Row, Ratios>
  targets: Target[]
  failures: string[]
}

/** Writes bench/results/<timestamp>.json, latest.json and latest.md; returns the paths. */
export function writeResults (dir: string, report: Report): string[] {
  mkdirSync(dir, { recursive: true })
  const { env, options, skipped, rows, ratios, targets, failures } = report
  const json = {
    ...env,
    ok: failures.length === 0,
    failures,
    options,
    autocannonOptions: {
      connections: options.connections,
      pipelining: options.pipelining,
      duration: options.duration,
      warmup: options.warmup,
      perRun: 'rows[].warmup.options and rows[].run.options hold the exact options of each run'
    },
    skippedStores: skipped,
    targets,
    rows: rows.map(row => ({ ...row, ratios: ratios.get(row) }))
  }
  const text = JSON.stringify(json, null, 2) + '\n'
  const stamp = env.timestamp.replace(/[:.]/g, '-')
  const files = [join(dir, `${stamp}.json`), join(dir, 'latest.json'), join(dir, 'latest.md')]
  writeFileSync(files[0], text)
  writeFileSync(files[1], text)
  const skippedLines = Object.entries(skipped).map(([store, reason]) => `- ${store} skipped: ${reason}`)
  const md = [
    `Measured ${env.timestamp} with \`npm run bench${options.quick ? ' -- --quick' : ''}\`: node ${env.node}, ${env.cpu} x ${env.cores} cores, ` +
      `autocannon ${env.autocannon} (${options.connections} connections, pipelining ${options.pipelining}, ${options.duration} s after ${options.warmup} s warm-up, a fresh server per run).`,
    '',
    markdownTable(rows, ratios),
    '',
    '`vs health`: req/s as a share of the mean GET /health req/s (measured before and after the booking scenarios) on the same machine and run; `default/b1`: bookings/s with the default BATCH_MAX over BATCH_MAX=1; ' +
      '`hot-noauth`: `hot` on a server with AUTH_DISABLED=true, no token sent; bookings/s of `checkout-hold` = holds/s (201 held), of `checkout-confirm` = confirms/s (200 confirmed), of `onsale` = bookings + holds/s (201s); ' +
      '`opening`: req/s = answers received before the sale opened per second (so its `vs health` stands beside `soldout`\'s), bookings/s = 201s per second from the opening on; ' +
      '`cpu:` the server process\'s own CPU over the measured run (process_cpu_seconds_total) per 201 (per 200 for confirms), PostgreSQL\'s and Redis\'s not included.',
    ...tableNotes(rows, ratios).map(line => `- ${line}`),
    ...(skippedLines.length > 0 ? ['', ...skippedLines] : []),
    ...(targets.length > 0 ? ['', 'Targets (the issue states them for PostgreSQL + Redis):', '', ...targets.map(t => `- ${t.met === null ? 'n/a' : t.met ? 'met' : '**missed**'}: ${t.store}, ${t.target}: ${t.measured}`)] : []),
    ...(failures.length > 0 ? ['', 'Failures:', '', ...failures.map(f => `- ${f}`)] : []),
    ''
  ].join('\n')
  writeFileSync(files[2], md)
  return files
}
