/**
 * Synchronous clean-ups for when the process ends before a teardown ran
 * (a crash, process.exit, Ctrl-C, tap's SIGTERM on a timeout), so that no
 * throwaway server outlives the run that started it.
 */
const hooks = new Set<() => void>()
const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP']

function runAll (): void {
  for (const hook of [...hooks].reverse()) {
    try { hook() } catch {}
  }
  hooks.clear()
}

function onSignal (signal: NodeJS.Signals): void {
  runAll()
  unlisten()
  // raised again: the other listeners (tap's exit handler) or the default action end the process
  process.kill(process.pid, signal)
}

function unlisten (): void {
  process.off('exit', runAll)
  for (const signal of SIGNALS) process.off(signal, onSignal)
}

/** Runs hook (synchronously) if the process ends while it is registered; returns the unregister function. */
export function onProcessExit (hook: () => void): () => void {
  if (hooks.size === 0) {
    process.on('exit', runAll)
    for (const signal of SIGNALS) process.on(signal, onSignal)
  }
  hooks.add(hook)
  return () => {
    hooks.delete(hook)
    if (hooks.size === 0) unlisten()
  }
}
