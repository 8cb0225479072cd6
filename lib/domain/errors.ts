/**
 * Domain errors: plain classes with a stable `code`. The domain never knows
 * about HTTP: lib/api/responses.ts, the HTTP contract as data, gives each code
 * its status, and plugins/errors.ts answers it in the error envelope.
 */
export type ErrorCode =
  | 'VALIDATION_ERROR' | 'NOT_FOUND' | 'SOLD_OUT' | 'BUSY' | 'IDEMPOTENCY_KEY_REUSED' | 'STORE_UNAVAILABLE'
  | 'UNAUTHENTICATED' | 'FORBIDDEN' | 'AUTH_UNAVAILABLE' | 'LIMIT_EXCEEDED' | 'HOLD_EXPIRED' | 'INVALID_STATE'
  | 'SALE_NOT_OPEN' | 'SALE_CLOSED' | 'CAPACITY_BELOW_TAKEN' | 'SEATS_AVAILABLE'

/**
 * An expected outcome (sold out, busy, rate limited, ...), answered to the
 * client: no stack trace, whose capture is most of the cost of answering a
 * sold-out section.
 */
export class ExpectedError extends Error {
  constructor (message: string) {
    const limit = Error.stackTraceLimit
    Error.stackTraceLimit = 0
    super(message)
    Error.stackTraceLimit = limit
    this.name = new.target.name
  }
}

export class DomainError extends ExpectedError {
  readonly code: ErrorCode
  readonly details: Record<string, unknown>

  constructor (code: ErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(message)
    this.code = code
    this.details = details
  }
}

/** Input the schema lets through but the operation cannot take; names the field. */
export class InvalidInputError extends DomainError {
  constructor (field: string, message: string) {
    super('VALIDATION_ERROR', message, { field })
  }
}

export class NotFoundError extends DomainError {
  constructor (what: string, id: string) {
    super('NOT_FOUND', `${what} ${id} not found`, { resource: what.toLowerCase(), id })
  }
}

/** Fewer than `qty` seats remained when the request was decided. */
export class SoldOutError extends DomainError {
  constructor (remaining: number, requested: number) {
    super('SOLD_OUT', remaining === 0
      ? 'Section is sold out'
      : `Only ${remaining} seat(s) remain, ${requested} requested`, { remaining, requested })
  }
}

/** The user would hold plus have confirmed more than the event's maxPerUser. */
export class LimitExceededError extends DomainError {
  constructor (allowed: number, requested: number) {
    super('LIMIT_EXCEEDED', `At most ${allowed} more seat(s) for this user in this event, ${requested} requested`, { allowed, requested })
  }
}

/** The section can serve the seats a user asked to wait for: it books them instead. */
export class SeatsAvailableError extends DomainError {
  constructor (remaining: number, requested: number) {
    super('SEATS_AVAILABLE', `${remaining} seat(s) remain, ${requested} asked: book them instead of waiting`, { remaining, requested })
  }
}

/** The hold ran out before it was confirmed: its seats went back on sale. */
export class HoldExpiredError extends DomainError {
  constructor (id: string) {
    super('HOLD_EXPIRED', `Booking ${id} was held until its expiresAt, which has passed: it expired`, { id })
  }
}

/** The booking cannot make this transition from its status (e.g. confirm a cancelled booking). */
export class InvalidStateError extends DomainError {
  constructor (id: string, status: string, message: string) {
    super('INVALID_STATE', message, { id, status })
  }
}

/** The event's sale opens at `opensAt` (the database's clock decides): not yet. */
export class SaleNotOpenError extends DomainError {
  constructor (opensAt: string) {
    super('SALE_NOT_OPEN', `The sale opens at ${opensAt}`, { opensAt })
  }
}

/** The event's sale ended (salesEnd passed), or it was closed or cancelled. */
export class SaleClosedError extends DomainError {
  constructor () {
    super('SALE_CLOSED', 'The sale of this event is over: it ended, or was closed or cancelled')
  }
}

/** A section's capacity cannot go below the seats held and sold in it. */
export class CapacityBelowTakenError extends DomainError {
  constructor (minimum: number, requested: number) {
    super('CAPACITY_BELOW_TAKEN', `Capacity cannot go below ${minimum}, the seats held and sold; ${requested} asked`, { minimum, requested })
  }
}

/** The section lock could not be had before the request's deadline: retry later, nothing was changed. */
export class BusyError extends DomainError {
  constructor (retryAfterSeconds: number, reason = 'lock wait deadline passed') {
    super('BUSY', `Section is busy (${reason}), retry later`, { retryAfter: retryAfterSeconds })
  }
}

export class IdempotencyKeyReusedError extends DomainError {
  constructor () {
    super('IDEMPOTENCY_KEY_REUSED', 'Idempotency-Key was already used with a different request body')
  }
}

/** A dependency is out of reach: retry later. */
class UnavailableError extends DomainError {
  constructor (code: 'STORE_UNAVAILABLE' | 'AUTH_UNAVAILABLE', what: string, retryAfter: number, cause: unknown) {
    super(code, `${what} temporarily unavailable, retry later`, { retryAfter })
    this.cause = cause
  }
}

/**
 * The database could not be reached, failed transiently, or did not answer
 * by the request's deadline: what was asked may or may not have been applied.
 */
export class StoreUnavailableError extends UnavailableError {
  constructor (cause: unknown) {
    super('STORE_UNAVAILABLE', 'Storage is', 1, cause)
  }
}

/** No usable bearer token: missing, malformed, expired, not yet valid, wrongly signed, or for another issuer or audience. */
export class UnauthenticatedError extends DomainError {
  constructor (reason: string) {
    super('UNAUTHENTICATED', `Authentication required: ${reason}`)
  }
}

/** The principal is known but may not do this. */
export class ForbiddenError extends DomainError {
  constructor (message: string) {
    super('FORBIDDEN', message)
  }
}

/** The identity provider's keys could not be fetched: tokens cannot be checked right now. */
export class AuthUnavailableError extends UnavailableError {
  constructor (cause: unknown) {
    super('AUTH_UNAVAILABLE', 'Token keys are', 5, cause)
  }
}

/**
 * Internal: a transaction must be run again (the conditional update refused,
 * a write conflict, a unique-key race). Stores retry it a bounded number of times.
 */
export class RetryableConflict extends Error {
  constructor (reason: string) {
    super(`transaction conflict: ${reason}`)
    this.name = 'RetryableConflict'
  }
}
