/**
 * The change feed's and the webhooks' API shapes (TypeBox): the source of
 * their validation, their serialization and their part of the OpenAPI document.
 */
import { Type, type Static } from '@sinclair/typebox'
import { MAX_PAGE_SIZE, ref, stringEnum } from './schemas.ts'

export const CHANGE_TYPES = [
  'booking.held', 'booking.confirmed', 'booking.cancelled', 'booking.expired',
  'event.created', 'event.updated', 'event.published', 'event.closed', 'event.cancelled',
  'section.changed', 'waitlist.offered'
] as const
export type ChangeType = typeof CHANGE_TYPES[number]

const EXAMPLE_CHANGE = 'chg_1024'
const EXAMPLE_CURSOR = '1734.1024'
const EXAMPLE_WEBHOOK = 'wh_665f1c2ab3e4d5f6a7b8c9d0'

const Moment = (description: string) => Type.String({ format: 'date-time', description, examples: ['2026-06-01T19:30:00.000Z'] })
const Cursor = (description: string) => Type.String({ minLength: 1, maxLength: 64, pattern: '^[0-9.]+$', description, examples: [EXAMPLE_CURSOR] })

export const ChangeTypeSchema = stringEnum(CHANGE_TYPES, { description: 'What changed' })

export const ChangeSchema = Type.Object({
  id: Type.String({ description: 'The change\'s id: a webhook\'s `webhook-id`, the same on every try', examples: [EXAMPLE_CHANGE] }),
  type: ChangeTypeSchema,
  occurredAt: Moment('When it was written, on the database\'s clock'),
  eventId: Type.String({ description: 'The event it belongs to', examples: ['665f1c2ab3e4d5f6a7b8c9d0'] }),
  data: Type.Unknown({ description: 'The resource after the change, as the API answers it: a Booking (booking.*), an Event (event.*), a Section (section.changed)' })
}, { $id: 'Change', description: 'A change recorded in the same write as the change itself' })

export const ChangePageSchema = Type.Object({
  items: Type.Array(ref(ChangeSchema)),
  nextCursor: Cursor('Send as `after` for what follows; present also when the page is empty (then it is the cursor sent)')
}, { $id: 'ChangePage', description: 'Changes in feed order, oldest first' })

/** One change type, as a pattern: a list of them is these, comma-separated. */
const ONE_TYPE = `(${CHANGE_TYPES.map(t => t.replace('.', '\\.')).join('|')})`

export const ChangeQuerySchema = Type.Object({
  after: Type.Optional(Cursor('A `nextCursor` answered before: the changes after it. Left out: from the oldest kept')),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_PAGE_SIZE, default: MAX_PAGE_SIZE, description: 'changes per page' })),
  types: Type.Optional(Type.String({
    minLength: 1,
    maxLength: 400,
    pattern: `^${ONE_TYPE}(,${ONE_TYPE})*$`,
    description: 'Only these types, comma-separated',
    examples: ['booking.confirmed,booking.cancelled']
  }))
}, { additionalProperties: false })
export type ChangeQueryAsk = Static<typeof ChangeQuerySchema>

export const WebhookInputSchema = Type.Object({
  url: Type.String({ minLength: 1, maxLength: 2000, description: 'Where deliveries are POSTed: https, a public address (unless the operator allows otherwise)', examples: ['https://hooks.example.com/tickets'] }),
  types: Type.Array(ChangeTypeSchema, { minItems: 1, maxItems: CHANGE_TYPES.length, uniqueItems: true, description: 'The types of change it gets' })
}, { $id: 'WebhookInput', additionalProperties: false, description: 'A webhook endpoint to make' })
export type WebhookInput = Static<typeof WebhookInputSchema>

const webhookFields = {
  _id: Type.String({ examples: [EXAMPLE_WEBHOOK] }),
  url: Type.String(),
  types: Type.Array(ChangeTypeSchema),
  scope: stringEnum(['own_events', 'all_events'] as const, { description: 'Whose events\' changes it gets: its organizer\'s, or every event\'s (made by an admin)' }),
  createdAt: Moment('When it was made'),
  disabled: Type.Boolean({ description: 'No more deliveries: its receiver answered 410 Gone, or WEBHOOK_DISABLE_AFTER deliveries in a row failed' }),
  disabledReason: Type.Optional(Type.String()),
  failures: Type.Integer({ description: 'Failed deliveries in a row' }),
  lastError: Type.Optional(Type.String({ description: 'When and why the last delivery failed' })),
  nextAttemptAt: Moment('When its next delivery is due (later than now while it waits after a failure)'),
  delivered: Type.Integer({ description: 'Changes delivered to it so far' })
}

export const WebhookSchema = Type.Object(webhookFields, { $id: 'Webhook', description: 'A webhook endpoint; its secret is shown only when it is made' })
export type Webhook = Static<typeof WebhookSchema>

export const WebhookCreatedSchema = Type.Object({
  ...webhookFields,
  secret: Type.String({ description: 'The signing secret (Standard Webhooks, whsec_...): shown this once', examples: ['whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'] })
}, { $id: 'WebhookCreated', description: 'A webhook endpoint just made, with its signing secret' })

export const WebhookIdParamsSchema = Type.Object({
  id: Type.String({ pattern: '^wh_[0-9a-f]{24}$', description: 'A webhook endpoint\'s id', examples: [EXAMPLE_WEBHOOK] })
}, { additionalProperties: false })

/** The named schemas of this file, each after those it references. */
export const CHANGE_SCHEMAS = [ChangeSchema, ChangePageSchema, WebhookInputSchema, WebhookSchema, WebhookCreatedSchema]
