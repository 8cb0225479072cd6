/**
 * Request deadlines. A request may wait LOCK_WAIT_MS for its section (queue
 * and lock); its own work then has WORK_MS more, so whatever a dependency
 * does (refuse, drop a session, stall without answering) the request is
 * answered within LOCK_WAIT_MS plus a second. Every Redis and database call
 * on a request's path is given the request's deadline.
 */

/** Past its lock deadline, the most a request's own work (a batch begun at the last moment, a read) may take. */
export const WORK_MS = 500

/** The dependency did not answer before the request's deadline; what it did meanwhile is unknown. */
export class DeadlineExceededError extends Error {
  constructor (what: string) {
    super(`${what}: no answer before the request's deadline`)
    this.name = 'DeadlineExceededError'
  }
}

/**
 * Runs fn with a signal that aborts at `deadline` (epoch ms) and settles by
 * then: with fn's outcome, or DeadlineExceededError. fn should stop its work
 * on the signal (and must not start any after it); its late outcome is ignored.
 * No deadline: fn as it is, with no signal.
 */
export async function beforeDeadline<T> (what: string, deadline: number | undefined, fn: (signal?: AbortSignal) => Promise<T>): Promise<T> {
  if (deadline === undefined) return await fn()
  const controller = new AbortController()
  // made only when the deadline passes: an Error's stack costs more than the rest of this
  if (deadline <= Date.now()) {
    const late = new DeadlineExceededError(what)
    controller.abort(late)
    throw late
  }
  let timer: NodeJS.Timeout | undefined
  const work = fn(controller.signal)
  try {
    return await Promise.race([work, new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        const late = new DeadlineExceededError(what)
        controller.abort(late)
        reject(late)
      }, deadline - Date.now())
    })])
  } finally {
    clearTimeout(timer)
    // an outcome that comes after the deadline is nobody's: never an unhandled rejection
    work.catch(() => {})
  }
}
