/**
 * `npm run bench`: every scenario against a freshly started server, on the
 * embedded store and on PostgreSQL + Redis (when reachable), with BATCH_MAX=1
 * and the default; requests carry the tokens of bench/auth.ts (a random secret
 * per bench run); prints progress, then the table, and writes the results
 * to bench/results/. Exits 1 when an invariant check fails, a scenario could
 * not run, or any answer was a 5xx; 2 on bad options. See bench/README.md.
 */
import { fileURLToPath } from 'node:url'
import { performance } from 'node:perf_hooks'
import { benchAuth } from './auth.ts'
import { installInterruptHandler, withUndo } from './cleanup.ts'
import { parseOptions, USAGE, type BatchName, type BenchOptions, type StoreName } from './options.ts'
import { progress } from './progress.ts'
import {
  computeRatios, environment, evaluateTargets, headerLine, tableNotes, targetLines, textTable, writeResults
} from './report.ts'
import {
  BOOKING_SCENARIOS, batchesOf, labelOf, newRow, reqPerSecOf, runBooking, runHealth, runList, serverErrors, writesPerSec, type Context, type Row, type RowScenario
} from './scenarios.ts'
import { runCheckout } from './checkout.ts'
import { runOnsale } from './onsale.ts'
import { runOpening } from './opening.ts'
import { openingSummary } from './opening-check.ts'
import { SERVER_VARIABLES } from './server.ts'
import { openStore } from './stores.ts'

const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url))

interface Step {
  label: string
  run: (ctx: Context) => Promise<Row[]>
  /** the row(s) recorded when the step fails before producing any */
  failed: (error: string) => Row[]
}

function errorRow (scenario: RowScenario, store: StoreName, batch: BatchName | '-', error: string): Row {
  return { ...newRow(scenario, store, batch, ''), error }
}

/**
 * The steps for one store, in table order. health runs first and again after the
 * booking scenarios: the mean of the two is the baseline of the ratios, so one
 * noisy measurement of the ceiling does not skew them.
 */
function plan (opts: BenchOptions, store: StoreName): Step[] {
  const health: Step = {
    label: labelOf({ scenario: 'health', store, batch: '-' }),
    run: async ctx => [await runHealth(ctx)],
    failed: e => [errorRow('health', store, '-', e)]
  }
  const steps: Step[] = [health]
  for (const scenario of BOOKING_SCENARIOS) {
    if (!opts.scenarios.includes(scenario)) continue
    for (const batch of batchesOf(scenario, opts.batches)) {
      steps.push({
        label: labelOf({ scenario, store, batch }),
        run: async ctx => [await runBooking(ctx, scenario, batch)],
        failed: e => [errorRow(scenario, store, batch, e)]
      })
    }
  }
  if (opts.scenarios.includes('checkout')) {
    for (const batch of opts.batches) {
      steps.push({
        label: `${labelOf({ scenario: 'checkout-hold', store, batch }).replace('checkout-hold', 'checkout')}: holds, then confirms of those holds`,
        run: async ctx => await runCheckout(ctx, batch),
        failed: e => [errorRow('checkout-hold', store, batch, e), errorRow('checkout-confirm', store, batch, e)]
      })
    }
  }
  if (opts.scenarios.includes('onsale')) {
    for (const batch of opts.batches) {
      steps.push({
        label: `${labelOf({ scenario: 'onsale', store, batch })}: reads, bookings, holds, confirms; a few sections sell out`,
        run: async ctx => [await runOnsale(ctx, batch)],
        failed: e => [errorRow('onsale', store, batch, e)]
      })
    }
  }
  if (opts.scenarios.includes('opening')) {
    for (const batch of opts.batches) {
      steps.push({
        label: `${labelOf({ scenario: 'opening', store, batch })}: bookings on one section from before its sale opens to after it`,
        run: async ctx => [await runOpening(ctx, batch)],
        failed: e => [errorRow('opening', store, batch, e)]
      })
    }
  }
  if (steps.length > 1) steps.push(health)
  if (opts.scenarios.includes('list')) {
    steps.push({
      label: `list / ${store}: seeding ${opts.listBookings} bookings, then list and list-user`,
      run: async ctx => await runList(ctx),
      failed: e => [errorRow('list', store, '-', e)]
    })
  }
  return steps
}

function summary (row: Row): string {
  if (row.error !== undefined) return `  -> ERROR: ${row.error}`
  const run = row.run
  if (run === null) return '  -> no measurement'
  const statuses = Object.entries(run.status).map(([code, n]) => `${code}: ${n}`).join(', ')
  const invariant = row.invariant === null ? '' : `, invariant ${row.invariant.ok ? 'ok' : 'FAILED'}`
  const perSec = writesPerSec(row)
  const unit = row.scenario === 'checkout-hold' ? 'holds/s' : row.scenario === 'checkout-confirm' ? 'confirms/s' : row.scenario === 'onsale' ? 'bookings+holds/s' : 'bookings/s'
  const bookings = perSec === null ? '' : `, ${perSec.toFixed(0)} ${unit}`
  const opening = row.opening?.run
  if (opening != null) {
    return `  -> ${openingSummary(opening)}; whole run p50 ${run.latencyMs.p50} ms, p99 ${run.latencyMs.p99} ms, ` +
      `answers {${statuses}}${run.errors > 0 ? `, ${run.errors} errors` : ''}${invariant}`
  }
  return `  -> ${(reqPerSecOf(row) ?? run.reqPerSec).toFixed(0)} req/s${bookings}, p50 ${run.latencyMs.p50} ms, p99 ${run.latencyMs.p99} ms, ` +
    `answers {${statuses}}${run.errors > 0 ? `, ${run.errors} errors` : ''}${invariant}`
}

/** Why the run must exit non-zero, one line per problem. */
function failuresOf (rows: Row[]): string[] {
  const out: string[] = []
  for (const row of rows) {
    const label = labelOf(row)
    if (row.error !== undefined) out.push(`${label}: did not complete: ${row.error}`)
    if (row.invariant !== null && !row.invariant.ok) out.push(...row.invariant.problems.map(p => `${label}: invariant: ${p}`))
    const errors = serverErrors(row.warmup) + serverErrors(row.run)
    if (errors > 0) out.push(`${label}: ${errors} answer(s) with status >= 500`)
    for (const [phase, result] of [['warm-up', row.warmup], ['run', row.run]] as const) {
      const unexpected = Object.entries(result?.status ?? {}).filter(([code]) => Number(code) < 500 && !row.expect.includes(Number(code)))
      if (unexpected.length > 0) out.push(`${label}: ${phase}: unexpected answers ${unexpected.map(([c, n]) => `${c}: ${n}`).join(', ')} (expected ${row.expect.join('/')})`)
      if (result !== null && result.responses === 0) out.push(`${label}: ${phase}: no answer at all`)
    }
  }
  // the list rows share their seeding run: report its 5xx once
  const seeded = new Set(rows.flatMap(r => r.seed === null ? [] : [r.seed]))
  for (const seed of seeded) {
    const errors = serverErrors(seed)
    if (errors > 0) out.push(`list seeding: ${errors} answer(s) with status >= 500`)
  }
  return out
}

async function main (): Promise<number> {
  let opts: BenchOptions | null
  try {
    opts = parseOptions(process.argv.slice(2))
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n\n${USAGE}`)
    return 2
  }
  if (opts === null) {
    process.stdout.write(USAGE)
    return 0
  }
  // benchmark servers get exactly the configuration each scenario sets
  for (const name of SERVER_VARIABLES) Reflect.deleteProperty(process.env, name)
  installInterruptHandler(signal => progress.log(`\n${signal}: stopping servers, dropping bench databases, removing temp dirs`))

  const env = environment()
  const auth = await benchAuth()
  const started = performance.now()
  progress.log(headerLine(env, opts))
  const rows: Row[] = []
  const skipped: Record<string, string> = {}
  const total = opts.stores.length * plan(opts, 'embedded').length
  let index = 0

  for (const store of opts.stores) {
    progress.log(`\n## ${store}: preparing${store === 'embedded' ? ' (PGlite initdb of a template data directory, once)' : ''}`)
    const opened = await openStore(store)
    if ('skipped' in opened) {
      skipped[store] = opened.skipped
      progress.log(`## ${store}: SKIPPED: ${opened.skipped}`)
      index += plan(opts, store).length
      continue
    }
    const { backend } = opened
    await withUndo(backend.close, async () => {
      for (const step of plan(opts, store)) {
        index++
        const t0 = performance.now()
        progress.log(`\n==> [${index}/${total}] ${step.label}`)
        let produced: Row[]
        try {
          produced = await step.run({ opts, backend, auth })
        } catch (err) {
          produced = step.failed(err instanceof Error ? (err.stack ?? err.message) : String(err))
        }
        progress.done()
        for (const row of produced) {
          rows.push(row)
          if (produced.length > 1) progress.log(`  ${labelOf(row)}:`)
          progress.log(summary(row))
          for (const note of row.notes) progress.log(`     note: ${note}`)
          if (row.invariant !== null && !row.invariant.ok) for (const p of row.invariant.problems) progress.log(`     invariant: ${p}`)
        }
        progress.log(`  (${((performance.now() - t0) / 1000).toFixed(1)} s)`)
      }
    })
  }

  const ratios = computeRatios(rows)
  const targets = evaluateTargets(rows, ratios)
  const failures = failuresOf(rows)
  const files = writeResults(RESULTS_DIR, { env, options: opts, skipped, rows, ratios, targets, failures })

  progress.log(`\n${headerLine(env, opts)}`)
  progress.log('vs health = req/s / mean GET /health req/s (same store, same run, measured before and after the booking scenarios); default/b1 = bookings/s, default BATCH_MAX / BATCH_MAX=1; hot-noauth = hot on a server with AUTH_DISABLED=true, no token sent; bookings/s of checkout-hold = holds/s (201 held), of checkout-confirm = confirms/s (200 confirmed), of onsale = bookings + holds/s (201s); opening: req/s = answers received before the sale opened per second (its vs health beside soldout\'s), bookings/s = 201s per second after it\n')
  progress.log(textTable(rows, ratios))
  for (const line of tableNotes(rows, ratios)) progress.log(line)
  for (const [store, reason] of Object.entries(skipped)) progress.log(`\n${store} skipped: ${reason}`)
  if (targets.length > 0) {
    progress.log('\nTargets (the issue states them for PostgreSQL + Redis):')
    for (const line of targetLines(targets)) progress.log(`  ${line}`)
  }
  if (failures.length > 0) {
    progress.log('\nFAILED:')
    for (const f of failures) progress.log(`  ${f}`)
  }
  progress.log(`\nwrote ${files.join(', ')}  (${((performance.now() - started) / 1000).toFixed(0)} s in all)`)
  return failures.length === 0 ? 0 : 1
}

process.exitCode = await main()
