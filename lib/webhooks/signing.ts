/**
 * Webhook secrets and signatures, in the Standard Webhooks format, so that
 * receivers can verify deliveries with any Standard Webhooks library. The
 * signing itself is the standardwebhooks package's.
 */
import { randomBytes } from 'node:crypto'
import { Webhook } from 'standardwebhooks'

/** A new secret: `whsec_` and the base64 of 24 random bytes, the form `new Webhook(secret)` reads. */
export function newWebhookSecret (): string {
  return `whsec_${randomBytes(24).toString('base64')}`
}

/** The headers that sign `body` as message `msgId` sent at `at`. */
export function signedHeaders (secret: string, msgId: string, body: string, at: Date): Record<string, string> {
  return {
    'webhook-id': msgId,
    // the same rounding sign() applies, so the header matches what was signed
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': new Webhook(secret).sign(msgId, at, body)
  }
}
