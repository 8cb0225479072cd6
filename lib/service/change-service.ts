/**
 * The change feed and webhook endpoints, for the principal asking
 * (lib/domain/access.ts): services and admins read every event's changes, an
 * organizer its own events'; an organizer's endpoints get its events'
 * changes, an admin's every event's. A URL is checked when it is registered
 * (https, not an address that is private as written) and again, on the
 * address resolved, at every delivery (lib/webhooks/send.ts).
 */
import { changeScope, maySeeWebhook, webhookOwner } from '../domain/access.ts'
import { publicChange, type ChangeType } from '../domain/changes.ts'
import { ForbiddenError, InvalidInputError, NotFoundError } from '../domain/errors.ts'
import { newId } from '../domain/ids.ts'
import type { Principal } from '../domain/principal.ts'
import type { WebhookEndpoint } from '../domain/webhooks.ts'
import type { ChangeQueryAsk, Webhook, WebhookInput } from '../api/change-schemas.ts'
import { MAX_PAGE_SIZE } from '../api/schemas.ts'
import type { Store } from '../store/store.ts'
import { newWebhookSecret } from '../webhooks/signing.ts'
import { checkWebhookUrl, type WebhookAllow } from '../webhooks/targets.ts'

export interface ChangeServiceOptions {
  store: Store
  allow: WebhookAllow
  answerWithinMs: number
}

/** An endpoint as answered: no secret, no place in the feed. */
function publicWebhook (e: WebhookEndpoint): Webhook {
  const answer: Webhook = {
    _id: e._id,
    url: e.url,
    types: e.types,
    scope: e.owner === '' ? 'all_events' : 'own_events',
    createdAt: e.createdAt,
    disabled: e.disabled,
    failures: e.failures,
    nextAttemptAt: e.nextAttemptAt,
    delivered: e.delivered
  }
  if (e.disabledReason !== undefined) answer.disabledReason = e.disabledReason
  if (e.lastError !== undefined) answer.lastError = e.lastError
  return answer
}

export function createChangeService ({ store, allow, answerWithinMs }: ChangeServiceOptions) {
  const deadline = (): number => Date.now() + answerWithinMs

  async function visible (actor: Principal, id: string): Promise<WebhookEndpoint> {
    const endpoint = await store.getWebhook(id, deadline())
    // another's endpoint is not there for it: its id reveals nothing
    if (endpoint === null || !maySeeWebhook(actor, endpoint)) throw new NotFoundError('Webhook', id)
    return endpoint
  }

  return {
    async listChanges (actor: Principal, ask: ChangeQueryAsk) {
      const scope = changeScope(actor)
      if (scope === null) throw new ForbiddenError('Only services, admins and organizers (their events\') read the change feed')
      const types = ask.types === undefined ? undefined : [...new Set(ask.types.split(','))] as ChangeType[]
      const page = await store.listChanges({ after: ask.after, limit: ask.limit ?? MAX_PAGE_SIZE, types, ...scope }, deadline())
      return { items: page.items.map(publicChange), nextCursor: page.nextCursor }
    },

    /** A new endpoint, with its secret (the one time it is shown). */
    async createWebhook (actor: Principal, input: WebhookInput) {
      const owner = webhookOwner(actor)
      if (owner === null) throw new ForbiddenError('Only organizers (for their events) and admins (for all) make webhooks')
      const refused = checkWebhookUrl(input.url, allow)
      if (refused !== null) throw new InvalidInputError('url', refused)
      const endpoint = await store.createWebhook({ _id: `wh_${newId()}`, owner, url: input.url, types: input.types, secret: newWebhookSecret() }, deadline())
      return { ...publicWebhook(endpoint), secret: endpoint.secret }
    },

    async listWebhooks (actor: Principal): Promise<Webhook[]> {
      const owner = webhookOwner(actor)
      if (owner === null) throw new ForbiddenError('Only organizers and admins have webhooks')
      return (await store.listWebhooks(owner === '' ? null : owner, deadline())).map(publicWebhook)
    },

    async getWebhook (actor: Principal, id: string): Promise<Webhook> {
      return publicWebhook(await visible(actor, id))
    },

    async deleteWebhook (actor: Principal, id: string): Promise<void> {
      await visible(actor, id)
      if (!await store.deleteWebhook(id, deadline())) throw new NotFoundError('Webhook', id)
    }
  }
}

export type ChangeService = ReturnType<typeof createChangeService>
