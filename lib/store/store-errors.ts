/**
 * How every store runs its operations: transactions retried a bounded number
 * of times on conflicts, and a lost database turned into StoreUnavailableError
 * (a 503, never a 500), as is one that has not answered by the request's
 * deadline. Adapters supply their driver's error tests.
 */
import { performance } from 'node:perf_hooks'
import { beforeDeadline, DeadlineExceededError } from '../support/deadline.ts'
import { DomainError, RetryableConflict, StoreUnavailableError } from '../domain/errors.ts'
import type { ChangeType } from '../domain/changes.ts'

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
  /** changes recorded in the outbox by a committed write */
  recorded?: (types: readonly ChangeType[]) => void
}

export function storeRunner (driver: DriverErrors, observer?: StoreObserver) {
  const retryable = (err: unknown): boolean => err instanceof RetryableConflict || driver.isRetryable(err)

  function classify (err: unknown): unknown {
    // a domain rule refused the change (an event's dates, its status): the store did its part
    if (err instanceof StoreUnavailableError || err instanceof DomainError) return err
    // past the deadline, whatever failed is the stall's doing
    if (err instanceof DeadlineExceededError || driver.isUnavailable(err)) {
      observer?.error?.('unavailable')
      return new StoreUnavailableError(err)
    }
    observer?.error?.(retryable(err) ? 'conflict' : 'query')
    return err
  }

  return {
    /**
     * Runs one attempt of a transaction after another until it commits or may
     * not be retried, none begun after the deadline (epoch ms), which ends the
     * wait in any case. An attempt whose commit got no answer by then may yet
     * commit: StoreUnavailableError says only that the outcome is not known.
     */
    async transaction<T> (operation: string, attempt: (signal?: AbortSignal) => Promise<T>, deadline?: number): Promise<T> {
      const start = performance.now()
      try {
        return await beforeDeadline(operation, deadline, async signal => {
          for (let n = 1; ; n++) {
            try {
              return await attempt(signal)
            } catch (err) {
              if (retryable(err) && n < MAX_TRANSACTION_ATTEMPTS && signal?.aborted !== true) {
                observer?.retry?.(operation)
                continue
              }
              throw err
            }
          }
        })
      } catch (err) {
        throw classify(err)
      } finally {
        observer?.transaction?.(operation, (performance.now() - start) / 1000)
      }
    },

    /** Runs a read, answered by the deadline (epoch ms) if one is given, classifying its failure. */
    async read<T> (fn: (signal?: AbortSignal) => Promise<T>, deadline?: number): Promise<T> {
      try {
        return await beforeDeadline('read', deadline, fn)
      } catch (err) {
        throw classify(err)
      }
    }
  }
}
