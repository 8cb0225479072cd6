/**
 * One way to call the API, whether the app runs in this process (app.inject,
 * integration tests) or behind a real base URL (fetch: e2e tests, bench).
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify'

export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'

/** The API's response envelope. */
export interface Envelope<T = any> {
  success: boolean
  data?: T
  error?: { code: string, message: string, [detail: string]: any }
}

export interface ApiResponse<T = any> {
  status: number
  /** lower-case names */
  headers: Record<string, string>
  text: string
  /** the parsed JSON envelope (throws when the answer is not JSON) */
  readonly body: Envelope<T>
}

export interface ApiClient {
  request: <T = any>(method: Method, path: string, body?: unknown, headers?: Record<string, string>) => Promise<ApiResponse<T>>
}

function response<T> (status: number, headers: Record<string, string>, text: string, what: string): ApiResponse<T> {
  let parsed: Envelope<T> | undefined
  return {
    status,
    headers,
    text,
    get body () {
      try {
        parsed ??= JSON.parse(text) as Envelope<T>
      } catch {
        throw new Error(`${what} answered ${status} with no JSON: ${text.slice(0, 200)}`)
      }
      return parsed
    }
  }
}

function requestHeaders (body: unknown, headers: Record<string, string>): Record<string, string> {
  return body === undefined ? headers : { 'content-type': 'application/json', ...headers }
}

/** app.inject with `defaults` (a token, say) under the request's own headers. */
export async function injectAs (app: FastifyInstance, defaults: Record<string, string>, request: string | InjectOptions): Promise<LightMyRequestResponse> {
  const options = typeof request === 'string' ? { url: request } : request
  return await app.inject({ ...options, headers: { ...defaults, ...options.headers } })
}

/** The app in this process, through app.inject; `defaults` go with every request (a token, say). */
export function injectClient (app: FastifyInstance, defaults: Record<string, string> = {}): ApiClient {
  return {
    async request (method, path, body, headers = {}) {
      const res = await injectAs(app, defaults, { method, url: path, headers: requestHeaders(body, headers), payload: body === undefined ? undefined : JSON.stringify(body) })
      const flat = Object.fromEntries(Object.entries(res.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : String(v)]))
      return response(res.statusCode, flat, res.body, `${method} ${path}`)
    }
  }
}

export interface UrlClientOptions {
  /** sent with every request (a token, say) */
  headers?: Record<string, string>
  /** tries of a GET that fails on the network (never a POST: it may have been applied) */
  readAttempts?: number
  /** per request; none by default */
  timeoutMs?: number
}

/** A server at baseUrl, through fetch. */
export function urlClient (baseUrl: string, { readAttempts = 1, timeoutMs, headers: defaults = {} }: UrlClientOptions = {}): ApiClient {
  return {
    async request (method, path, body, headers = {}) {
      for (let attempt = 1; ; attempt++) {
        try {
          const res = await fetch(baseUrl + path, {
            method,
            headers: requestHeaders(body, { ...defaults, ...headers }),
            body: body === undefined ? undefined : JSON.stringify(body),
            signal: timeoutMs === undefined ? undefined : AbortSignal.timeout(timeoutMs)
          })
          return response(res.status, Object.fromEntries(res.headers), await res.text(), `${method} ${path}`)
        } catch (err) {
          if (method !== 'GET' || attempt >= readAttempts) throw err
          await sleep(200 * attempt)
        }
      }
    }
  }
}
