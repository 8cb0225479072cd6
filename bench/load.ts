/**
 * One autocannon run, ended gracefully: when the duration is over, every
 * connection stops sending and waits for the answer it is owed, so each
 * request the server handled is counted (a booking stored without its 201
 * being counted would break the invariant check). A hard bound (duration +
 * DRAIN_SECONDS) stops the run whatever happens.
 */
import { performance } from 'node:perf_hooks'
import autocannon from 'autocannon'
import { recordedHeaders } from './auth.ts'
import { progress } from './progress.ts'

/** Longest wait for the last answers after the duration (the request timeout is 10 s). */
export const DRAIN_SECONDS = 15
const REQUEST_TIMEOUT_SECONDS = 10
const SAMPLE_INTERVAL_MS = 100

export interface LoadSpec {
  /** printed in the progress line */
  label: string
  url: string
  connections: number
  pipelining: number
  /** seconds; ignored when amount is set */
  duration: number
  /** a fixed number of requests instead of a duration (seeding), bounded by maxSeconds */
  amount?: number
  maxSeconds?: number
  method?: 'GET' | 'POST'
  path: string
  body?: string
  /** sent with every request, `requests` entries included (a token) */
  headers?: Record<string, string>
  /** per-request generation (autocannon `requests`); overrides method/path/body */
  requests?: autocannon.Request[]
}

/** The exact autocannon options of a run, without functions, as recorded in the JSON. */
export type RecordedOptions = Record<string, unknown>

export interface LoadResult {
  options: RecordedOptions
  /** seconds from the first request to the last answer */
  seconds: number
  responses: number
  /** answers per HTTP status */
  status: Record<string, number>
  reqPerSec: number
  /** 201 answers per second */
  createdPerSec: number
  latencyMs: { p50: number, p90: number, p99: number, max: number, mean: number }
  errors: number
  timeouts: number
  /** the run ended gracefully: no request was cut off by the end of the run */
  drained: boolean
  /** requests sent without an answer (timeouts and connection errors included): their outcome is unknown */
  unanswered: number
  raw: autocannon.Result
}

/** The internals of autocannon's Client the graceful end relies on (autocannon 7-9). */
interface ClientInternals { reqsMade?: unknown, responseMax?: unknown }

export async function runLoad (spec: LoadSpec): Promise<LoadResult> {
  const clients: ClientInternals[] = []
  const bySeconds = spec.amount === undefined
  // autocannon merges these under each `requests` entry's own headers
  const headers = { ...(spec.body === undefined && spec.requests === undefined ? {} : { 'content-type': 'application/json' }), ...spec.headers }
  const options: autocannon.Options = {
    // autocannon takes the path from the url; `requests` entries carry their own
    url: spec.url + spec.path,
    connections: spec.connections,
    pipelining: spec.pipelining,
    timeout: REQUEST_TIMEOUT_SECONDS,
    sampleInt: SAMPLE_INTERVAL_MS,
    ...(bySeconds ? { duration: spec.duration + DRAIN_SECONDS } : { amount: spec.amount }),
    method: spec.method ?? 'GET',
    headers,
    ...(spec.body === undefined ? {} : { body: spec.body }),
    ...(spec.requests === undefined ? {} : { requests: spec.requests }),
    setupClient: (client) => { clients.push(client as unknown as ClientInternals) }
  }

  const recorded: RecordedOptions = {
    connections: spec.connections,
    pipelining: spec.pipelining,
    ...(bySeconds
      ? { duration: spec.duration, end: `graceful: no new request after ${spec.duration} s, then the answers owed are awaited (hard stop at ${spec.duration + DRAIN_SECONDS} s)` }
      : { amount: spec.amount, maxSeconds: spec.maxSeconds }),
    timeout: REQUEST_TIMEOUT_SECONDS,
    sampleInt: SAMPLE_INTERVAL_MS,
    method: spec.method ?? 'GET',
    url: spec.url + spec.path,
    headers: recordedHeaders(headers),
    ...(spec.body === undefined ? {} : { body: spec.body }),
    ...(spec.requests === undefined ? {} : { requests: spec.requests.length + ' request(s), generated per request by setupRequest' })
  }

  const start = performance.now()
  let lastAnswer = start
  let responses = 0
  /** set when requests in flight were cut off: no graceful end possible, or the watchdog stopped a seeding run */
  let cutOff = false
  let settle!: (err: unknown, result?: autocannon.Result) => void
  const finished = new Promise<autocannon.Result>((resolve, reject) => {
    settle = (err, result) => { if (err === null || err === undefined) resolve(result!); else reject(err) }
  })
  const instance = autocannon(options, (err, result) => settle(err, result))
  instance.on('response', () => { responses++; lastAnswer = performance.now() })

  const endTimer = !bySeconds
    ? undefined
    : setTimeout(() => {
      for (const client of clients) {
        if (typeof client.reqsMade === 'number' && client.reqsMade > 0) client.responseMax = client.reqsMade
        else cutOff = true
      }
      if (cutOff) instance.stop()
    }, spec.duration * 1000)
  const watchdog = spec.maxSeconds === undefined
    ? undefined
    : setTimeout(() => { cutOff = true; instance.stop() }, spec.maxSeconds * 1000)
  const total = bySeconds ? spec.duration : spec.amount!
  const ticker = setInterval(() => {
    const elapsed = (performance.now() - start) / 1000
    const rate = responses / Math.max(elapsed, 0.001)
    progress.update(bySeconds
      ? `${spec.label}  ${Math.min(elapsed, spec.duration).toFixed(0)}/${spec.duration} s  ${rate.toFixed(0)} req/s`
      : `${spec.label}  ${responses}/${total} requests  ${elapsed.toFixed(0)} s  ${rate.toFixed(0)} req/s`)
  }, 1000)

  let raw: autocannon.Result
  try {
    raw = await finished
  } finally {
    clearTimeout(endTimer)
    clearTimeout(watchdog)
    clearInterval(ticker)
  }

  const seconds = Math.max((lastAnswer - start) / 1000, 0.001)
  const status: Record<string, number> = {}
  for (const [code, stats] of Object.entries(raw.statusCodeStats ?? {})) status[code] = stats.count ?? 0
  const answered = Object.values(status).reduce((a, b) => a + b, 0)
  // a request that timed out or lost its connection may or may not have been applied
  const unanswered = Math.max(0, raw.requests.sent - answered)
  return {
    options: recorded,
    seconds,
    responses: answered,
    status,
    reqPerSec: answered / seconds,
    createdPerSec: (status['201'] ?? 0) / seconds,
    latencyMs: { p50: raw.latency.p50, p90: raw.latency.p90, p99: raw.latency.p99, max: raw.latency.max, mean: raw.latency.mean },
    errors: raw.errors,
    timeouts: raw.timeouts,
    drained: !cutOff,
    unanswered,
    raw
  }
}
