/**
 * What must be undone if the bench is interrupted (Ctrl-C, SIGTERM) while a
 * run is in progress: servers to stop, databases to drop, temp dirs to remove.
 * Normal runs undo each of these in finally blocks and take them off the list.
 */
type Undo = () => Promise<unknown>

const pending = new Set<Undo>()

/** Runs fn, then undo (also on an interrupt while fn runs). undo must be safe to call twice. */
export async function withUndo<T> (undo: Undo, fn: () => Promise<T>): Promise<T> {
  pending.add(undo)
  try {
    return await fn()
  } finally {
    pending.delete(undo)
    await undo()
  }
}

export const pendingUndo = {
  add: (undo: Undo) => { pending.add(undo) },
  delete: (undo: Undo) => { pending.delete(undo) }
}

let interrupted = false

/** On SIGINT/SIGTERM: undo what is pending (newest first, 30 s at most), then exit 130. */
export function installInterruptHandler (onInterrupt: (signal: string) => void): void {
  const handler = (signal: NodeJS.Signals): void => {
    if (interrupted) return
    interrupted = true
    onInterrupt(signal)
    const undo = [...pending].reverse()
    const all = (async () => { for (const fn of undo) await fn().catch(() => {}) })()
    const timeout = new Promise(resolve => setTimeout(resolve, 30_000).unref())
    void Promise.race([all, timeout]).then(() => process.exit(130))
  }
  process.on('SIGINT', handler)
  process.on('SIGTERM', handler)
}
