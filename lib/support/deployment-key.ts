import { createHash } from 'node:crypto'

/**
 * A short key naming one deployment in the Redis servers it may share with
 * others: a hash of its database (store kind and address, no credentials), so
 * deployments sharing a Redis never count or lock for each other.
 */
export function deploymentKey (database: string): string {
  return createHash('sha256').update(database).digest('base64url').slice(0, 22)
}
