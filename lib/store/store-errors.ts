/**
 * How every store runs its operations: transactions retried a bounded number
 * of times on conflicts, and a lost database turned into StoreUnavailableError
 * (a 503, never a 500). Adapters supply their driver's error tests.
 */
import { performance } from 'node:perf_hooks'
import { RetryableConflict, StoreUnavailableError } from '../errors.ts'

/** Bounded retries of a transaction that hit a conflict; every adapter uses the same bound. */
const MAX_TRANSACTION_ATTEMPTS = 5

export interface DriverErrors {
  /** the same transaction may simply run again (write conflict, deadlock, racing unique key) */
  isRetryable: (err: unknown) => boolean
  /** the database is out of reach */
  isUnavailable: (err: unknown) => boolean
}

/** Told what the database did, for the metrics. */
export interface StoreObserver {
  /** a transaction ended, committed or not: its seconds, retries included */
  transaction?: (operation: string, seconds: number) => void
  retry?: (operation: string) => void
  error?: (kind: 'unavailable' | 'conflict' | 'query') => void
}

export function storeRunner (driver: DriverErrors, observer?: StoreObserver) {
  const retryable = (err: unknown): boolean => err instanceof RetryableConflict || driver.isRetryable(err)

  function classify (err: unknown): unknown {
    if (err instanceof StoreUnavailableError) return err
    if (driver.isUnavailable(err)) {
      observer?.error?.('unavailable')
      return new StoreUnavailableError(err)
    }
    observer?.error?.(retryable(err) ? 'conflict' : 'query')
    return err
  }

  return {
    /** Runs one attempt of a transaction after another until it commits or may not be retried. */
    async transaction<T> (operation: string, attempt: () => Promise<T>): Promise<T> {
      const start = performance.now()
      try {
        for (let n = 1; ; n++) {
          try {
            return await attempt()
          } catch (err) {
            if (retryable(err) && n < MAX_TRANSACTION_ATTEMPTS) {
              observer?.retry?.(operation)
              continue
            }
            throw classify(err)
          }
        }
      } finally {
        observer?.transaction?.(operation, (performance.now() - start) / 1000)
      }
    },

    /** Runs a read, classifying its failure. */
    async read<T> (fn: () => Promise<T>): Promise<T> {
      try {
        return await fn()
      } catch (err) {
        throw classify(err)
      }
    }
  }
}
