/**
 * Which webhook URLs may be registered. The check runs when a URL is
 * registered and again before each send; it sees only the URL text, so a
 * name that resolves to a private address passes here and is refused at
 * connect time by the sending agent (see send.ts).
 */
import { isIP } from 'node:net'
import ipaddr from 'ipaddr.js'

/** What a deployment lets webhook URLs reach: plain http, and private or reserved addresses. */
export interface WebhookAllow {
  http: boolean
  private: boolean
}

/** Why `url` may not be used as a webhook target, or null when it may. */
export function checkWebhookUrl (url: string, allow: WebhookAllow): string | null {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return 'not a valid absolute URL'
  }

  if (parsed.protocol === 'http:') {
    if (!allow.http) return 'http is not allowed, use https'
  } else if (parsed.protocol !== 'https:') {
    return `scheme ${parsed.protocol.replace(/:$/, '')} is not allowed, use https`
  }

  // credentials would be sent to the receiver and show wherever the URL is shown
  if (parsed.username !== '' || parsed.password !== '') return 'credentials in the URL are not allowed'

  if (allow.private) return null

  // URL has already turned 127.1, 0x7f000001 and the like into dotted form
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1')
  if (isIP(host) !== 0) {
    // process() turns IPv4-mapped IPv6 (::ffff:10.0.0.1) into the IPv4 address it stands for
    const range = ipaddr.process(host).range()
    if (range !== 'unicast') return `address ${host} is not public (${range})`
    return null
  }

  const name = host.toLowerCase().replace(/\.$/, '')
  if (name === 'localhost' || name.endsWith('.localhost')) return `host ${name} is not public`
  return null
}
