/**
 * One webhook delivery attempt: a POST to the receiver, judged by its status.
 * Built to be pointed at by strangers: the URL is checked again before each
 * send, the address actually connected to is checked by the agent (so a name
 * that resolves to a private address, or starts to, is refused), redirects
 * are not followed, at most a few KB of the answer are read, and the whole
 * exchange has a deadline. It never throws: every end is an outcome.
 */
import http from 'node:http'
import https from 'node:https'
import { performance } from 'node:perf_hooks'
import { RequestFilteringHttpAgent, RequestFilteringHttpsAgent } from 'request-filtering-agent'
import { checkWebhookUrl, type WebhookAllow } from './targets.ts'

export type SendOutcome =
  | { kind: 'delivered', status: number, ms: number }
  | { kind: 'failed', status?: number, error: string, gone: boolean, ms: number }

export interface SendInput {
  url: string
  headers: Record<string, string>
  body: string
  timeoutMs: number
  allow: WebhookAllow
  /** How much of the answer to read before dropping the connection; 4096 unless set. */
  maxResponseBytes?: number
}

const DEFAULT_MAX_RESPONSE_BYTES = 4096
const SNIPPET_CHARS = 200
// enough bytes for SNIPPET_CHARS characters of UTF-8
const SNIPPET_BYTES = SNIPPET_CHARS * 4

interface Agents { http: http.Agent, https: https.Agent }
// one pair per setting, kept for the process: keep-alive only pays off when agents are shared
const agentsByPrivate = new Map<boolean, Agents>()

function agentsFor (allowPrivate: boolean): Agents {
  let agents = agentsByPrivate.get(allowPrivate)
  if (agents === undefined) {
    const options = { keepAlive: true, allowPrivateIPAddress: allowPrivate }
    agents = { http: new RequestFilteringHttpAgent(options), https: new RequestFilteringHttpsAgent(options) }
    agentsByPrivate.set(allowPrivate, agents)
  }
  return agents
}

/** POST `body` to `url`; resolves with what happened, within about `timeoutMs`. */
export function sendWebhook (input: SendInput): Promise<SendOutcome> {
  const started = performance.now()
  const elapsed = (): number => Math.round(performance.now() - started)

  const refused = checkWebhookUrl(input.url, input.allow)
  if (refused !== null) {
    return Promise.resolve({ kind: 'failed', error: `URL not allowed: ${refused}`, gone: false, ms: elapsed() })
  }

  return new Promise<SendOutcome>(resolve => {
    const maxBytes = input.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES
    let settled = false
    let req: http.ClientRequest | undefined
    let status: number | undefined
    const head: Buffer[] = []
    let headBytes = 0

    const settle = (outcome: SendOutcome): void => {
      if (settled) return
      settled = true
      resolve(outcome)
    }
    const fail = (error: string): void => {
      settle({ kind: 'failed', error, gone: false, ms: elapsed() })
    }
    // the answer is in (or as much of it as will be read): judge it by its status
    const finish = (): void => {
      clearTimeout(timer)
      if (status !== undefined) settle(outcomeFor(status, snippet(head), elapsed()))
    }

    // runs on after a 2xx has settled too, so a body that never ends is still cut off
    const timer = setTimeout(() => {
      if (status !== undefined) finish()
      else fail(`timeout after ${input.timeoutMs} ms`)
      req?.destroy()
    }, input.timeoutMs)

    try {
      const url = new URL(input.url)
      const secure = url.protocol === 'https:'
      const agents = agentsFor(input.allow.private)
      req = (secure ? https : http).request({
        method: 'POST',
        protocol: url.protocol,
        hostname: url.hostname.replace(/^\[(.*)\]$/, '$1'),
        port: url.port === '' ? undefined : Number(url.port),
        path: `${url.pathname}${url.search}`,
        agent: secure ? agents.https : agents.http,
        headers: {
          'content-type': 'application/json',
          ...input.headers,
          'content-length': Buffer.byteLength(input.body)
        }
      })
    } catch (err) {
      // bad header names or values are refused before anything is sent
      clearTimeout(timer)
      fail(`request not sent (${(err as NodeJS.ErrnoException).code ?? 'invalid request'})`)
      return
    }

    req.on('error', err => {
      if (status !== undefined) finish()
      else { clearTimeout(timer); fail(errorText(err)) }
    })
    req.on('close', () => {
      if (status === undefined) { clearTimeout(timer); fail('connection closed without a response') }
    })
    req.on('response', res => {
      status = res.statusCode ?? 0
      // a 2xx is all that is needed; the rest of the body is only drained (or cut off)
      if (status >= 200 && status < 300) settle({ kind: 'delivered', status, ms: elapsed() })
      let received = 0
      res.on('data', (chunk: Buffer) => {
        if (headBytes < SNIPPET_BYTES) {
          head.push(chunk.subarray(0, SNIPPET_BYTES - headBytes))
          headBytes += Math.min(chunk.length, SNIPPET_BYTES - headBytes)
        }
        received += chunk.length
        if (received > maxBytes) {
          finish()
          res.destroy() // the connection goes too: it is not reusable mid-body
        }
      })
      res.on('end', finish)
      res.on('close', finish)
      res.on('error', () => {}) // an aborted answer: 'close' follows and settles
    })

    req.end(input.body)
  })
}

function outcomeFor (status: number, text: string, ms: number): SendOutcome {
  if (status >= 200 && status < 300) return { kind: 'delivered', status, ms }
  // following would let a receiver point us at an address it could not register
  if (status >= 300 && status < 400) return { kind: 'failed', status, error: 'redirect not followed (3xx)', gone: false, ms }
  const error = text === '' ? `HTTP ${status}` : `HTTP ${status}: ${text}`
  return { kind: 'failed', status, error, gone: status === 410, ms }
}

/** The start of the answer, on one line, for the failure's error text. */
function snippet (chunks: Buffer[]): string {
  const text = Buffer.concat(chunks).toString('utf8').replace(/[\u0000-\u001f\u007f\s]+/g, ' ').trim()
  return [...text].slice(0, SNIPPET_CHARS).join('')
}

/** A short error text; node's network errors carry addresses, never our headers or body. */
function errorText (err: Error): string {
  const message = String(err.message)
  // the filtering agent's refusal: "DNS lookup <address>(...) is not allowed. Because, ..."
  const text = message.startsWith('DNS lookup') && message.includes('is not allowed') ? `address refused: ${message}` : message
  return text.replace(/\s+/g, ' ').slice(0, SNIPPET_CHARS)
}
