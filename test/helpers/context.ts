/** What the helpers need from a tap test (or a script): a place to register clean-up. */
export interface TestContext { teardown: (fn: () => unknown) => void }

/** A TestContext outside tap (scripts): cleanup() undoes everything, newest first. */
export function scriptContext (): TestContext & { cleanup: () => Promise<void> } {
  const undo: Array<() => unknown> = []
  return {
    teardown: fn => { undo.push(fn) },
    async cleanup () {
      for (const fn of undo.splice(0).reverse()) await fn()
    }
  }
}
