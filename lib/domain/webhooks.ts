/**
 * Webhook endpoints as stored, and the rules of their delivery that do not
 * depend on a store or on HTTP: whose changes an endpoint gets, when a failed
 * delivery is tried again, when one is given up and when an endpoint is
 * disabled. Pure.
 */
import type { ChangeType, StoredChange } from './changes.ts'

export interface WebhookEndpoint {
  _id: string
  /** the organizer whose events' changes it gets; '' for an admin's: every event's */
  owner: string
  url: string
  types: ChangeType[]
  /** whsec_...: shown once, when it is made */
  secret: string
  createdAt: string
  /** its place in the change feed: every change before it was delivered (or given up) */
  cursor: string
  /** failed tries in a row */
  failures: number
  /** when the change it is stuck on first failed */
  failingSince?: string
  nextAttemptAt: string
  lastError?: string
  delivered: number
  disabled: boolean
  disabledReason?: string
}

/** What a delivery round leaves of an endpoint, saved only while its deliverer still holds its lease. */
export type WebhookProgress = Pick<WebhookEndpoint, 'cursor' | 'failures' | 'failingSince' | 'nextAttemptAt' | 'lastError' | 'disabled' | 'disabledReason'> & {
  /** deliveries made in the round */
  delivered: number
}

export interface DeliveryRules {
  retryBaseMs: number
  retryMaxMs: number
  /** a change that keeps failing is given up this long after its first failure */
  retryHours: number
  /** failures in a row that disable the endpoint */
  disableAfter: number
}

/** Whether an endpoint gets a change: of a type it asked for, and of its owner's events (all, for an admin's). */
export function endpointWants (endpoint: Pick<WebhookEndpoint, 'owner' | 'types'>, change: Pick<StoredChange, 'type' | 'owner'>): boolean {
  return endpoint.types.includes(change.type) && (endpoint.owner === '' || endpoint.owner === change.owner)
}

/**
 * The wait before try `failures + 1`: exponential from retryBaseMs, capped at
 * retryMaxMs, with full jitter on its upper half so a crowd of endpoints
 * failing together does not come back together.
 */
export function retryDelayMs (failures: number, rules: Pick<DeliveryRules, 'retryBaseMs' | 'retryMaxMs'>, random = Math.random): number {
  const ceiling = Math.min(rules.retryMaxMs, rules.retryBaseMs * 2 ** Math.min(Math.max(failures - 1, 0), 30))
  return Math.round(ceiling / 2 + random() * ceiling / 2)
}
