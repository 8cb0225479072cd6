/**
 * What a booking costs the service in CPU: the server process's own
 * `process_cpu_seconds_total` (prom-client's default metrics, GET /metrics),
 * read right before and right after the measured run, divided by the 201s of
 * the run. The bench servers run without METRICS_TOKEN, so /metrics is open to
 * the bench. PostgreSQL's and Redis's CPU are not in it: the service process only.
 */
import type { LoadResult } from './load.ts'

const METRIC = 'process_cpu_seconds_total'
const METRICS_TIMEOUT_MS = 10_000

export interface CpuCost {
  /** process_cpu_seconds_total before and after the measured run */
  beforeSeconds: number
  afterSeconds: number
  /** CPU milliseconds of the service process over the measured run */
  cpuMs: number
  /** the answers of the run the CPU is divided by (201 bookings; onsale: bookings + holds; checkout: holds, then 200 confirms) */
  bookings: number
  /** cpuMs / bookings; null without a booking */
  perBookingMs: number | null
}

/** The value of process_cpu_seconds_total in a Prometheus text exposition; throws when it is absent. */
export function parseCpuSeconds (exposition: string): number {
  for (const line of exposition.split('\n')) {
    // `name value` or `name{labels} value`, optionally followed by a timestamp
    const match = /^process_cpu_seconds_total(?:\{[^}]*\})?\s+(\S+)/.exec(line)
    if (match === null) continue
    const value = Number(match[1])
    if (Number.isFinite(value)) return value
    throw new Error(`${METRIC} is not a number: ${line}`)
  }
  throw new Error(`no ${METRIC} in the metrics`)
}

export function cpuCost (beforeSeconds: number, afterSeconds: number, bookings: number): CpuCost {
  const cpuMs = (afterSeconds - beforeSeconds) * 1000
  return { beforeSeconds, afterSeconds, cpuMs, bookings, perBookingMs: bookings > 0 ? cpuMs / bookings : null }
}

/** The server's CPU seconds so far, from its GET /metrics. */
export async function readCpuSeconds (url: string): Promise<number> {
  const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(METRICS_TIMEOUT_MS) })
  const text = await res.text()
  if (res.status !== 200) throw new Error(`GET /metrics answered ${res.status}: ${text.slice(0, 200)}`)
  return parseCpuSeconds(text)
}

/** Runs the measured load between two readings of the server's CPU; the cost is per answer of that run with `status` (a 201 booking; a 200 confirm). */
export async function withCpuCost (url: string, run: () => Promise<LoadResult>, status = 201): Promise<{ result: LoadResult, cpu: CpuCost }> {
  const before = await readCpuSeconds(url)
  const result = await run()
  const after = await readCpuSeconds(url)
  return { result, cpu: cpuCost(before, after, result.status[String(status)] ?? 0) }
}

/** `cpu: hot / postgres / batch default: 0.21 CPU-ms per booking (service process only)` */
export function cpuLine (label: string, cpu: CpuCost, unit = 'booking'): string {
  const figure = cpu.perBookingMs === null ? `n/a (no ${unit} in ${cpu.cpuMs.toFixed(0)} CPU-ms)` : `${cpu.perBookingMs.toFixed(2)} CPU-ms per ${unit}`
  return `cpu: ${label}: ${figure} (service process only)`
}
