/**
 * Start-up's words for a server that did not answer: which server, where, and
 * why, in one line ("PostgreSQL at 127.0.0.1:5999 did not answer: ECONNREFUSED"),
 * never credentials from its URL.
 */

/** host:port of each host in a URL (a MongoDB URI may list several); credentials left out. */
export function addressOf (url: string, defaultPort: number): string {
  // the URL parser takes one host: a seed list is split here
  const match = /^[a-z+]+:\/\/(?:[^@/]*@)?([^/?#]*)/i.exec(url)
  const hosts = (match?.[1] ?? '').split(',').filter(Boolean)
  return hosts.map(host => /:\d+$/.test(host) ? host : `${host}:${defaultPort}`).join(',') || url.replace(/\/\/[^@/]*@/, '//')
}

/** The reason of a connection failure: its socket code (ECONNREFUSED, ENOTFOUND, ...), else its message's first line. */
export function reasonOf (err: unknown): string {
  const errors = err instanceof AggregateError ? err.errors : []
  for (const e of [err, ...errors]) {
    const code = (e as { code?: unknown } | null)?.code
    if (typeof code === 'string' && /^E[A-Z_]+$/.test(code)) return code
  }
  const message = err instanceof Error ? err.message : String(err)
  return message.split('\n')[0] || (err instanceof Error ? err.name : 'unknown error')
}

/** "<server> at <host:port> did not answer: <reason>" */
export function unreachableError (server: string, url: string, defaultPort: number, err: unknown): Error {
  return new Error(`${server} at ${addressOf(url, defaultPort)} did not answer: ${reasonOf(err)}`, { cause: err })
}
