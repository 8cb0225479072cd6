/** Signals to whole process trees we started (Linux /proc): freeze, thaw, kill. */
import { readdirSync, readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'

function stat (pid: number): { state: string, ppid: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // the command name in (...) may hold spaces: fields start after the last ')'
    const [state, ppid] = text.slice(text.lastIndexOf(')') + 2).split(' ')
    return { state, ppid: Number(ppid) }
  } catch {
    return undefined
  }
}

// a process that exited but was not reaped yet (a zombie) is no longer there to signal
const live = (s: { state: string } | undefined): boolean => s !== undefined && s.state !== 'Z' && s.state !== 'X'

/** Running, stopped or sleeping; not gone and not a zombie nobody reaped. */
export function alive (pid: number): boolean {
  return live(stat(pid))
}

/** pid and all its live descendants, parents first. */
export function processTree (pid: number): number[] {
  const parents = new Map<number, number[]>()
  for (const entry of readdirSync('/proc')) {
    const child = Number(entry)
    const s = Number.isInteger(child) ? stat(child) : undefined
    if (live(s)) parents.set(s!.ppid, [...(parents.get(s!.ppid) ?? []), child])
  }
  const tree = [pid]
  for (let i = 0; i < tree.length; i++) tree.push(...(parents.get(tree[i]) ?? []))
  return tree
}

/** Sends signal to the tree of pid, parent first (a stopped parent forks no new child). */
export function signalTree (pid: number, signal: NodeJS.Signals): void {
  for (const p of processTree(pid)) {
    try { process.kill(p, signal) } catch {}
  }
}

/**
 * SIGSTOP to the tree of pid; resolves once every process in it has stopped
 * (delivery is asynchronous, and a child may have been forking meanwhile).
 */
export async function freezeTree (pid: number): Promise<void> {
  for (;;) {
    signalTree(pid, 'SIGSTOP')
    if (processTree(pid).every(p => !alive(p) || processState(p) === 'T')) return
    await sleep(10)
  }
}

/** 'T' (stopped) when frozen, e.g. 'S' or 'R' when running; undefined when gone. */
export function processState (pid: number): string | undefined {
  return stat(pid)?.state
}
