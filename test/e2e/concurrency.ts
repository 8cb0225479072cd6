/** `npm run test:concurrency`: the concurrency scenarios with a table each; exits non-zero on any violation. */
import { scriptContext } from '../helpers/context.ts'
import { missing } from '../helpers/services.ts'
import { embeddedEnv, formatResult, multiInstance, seedRace } from './concurrency-scenarios.ts'
import { expiryLag, formatExpiryLag } from './holds-expiry-lag.ts'
import { formatHoldsRace, holdsRace } from './holds-race.ts'

const t = scriptContext()
// each scenario's name and its violations (empty: passed)
const results: Array<{ name: string, violations: string[] }> = []
async function run<R extends { name: string, violations: string[] }> (title: string, scenario: () => Promise<R>, format: (r: R) => string): Promise<void> {
  console.log(`\n${title} ...`)
  const result = await scenario()
  results.push(result)
  console.log(format(result))
}

try {
  await run('seed race on the embedded store', async () => await seedRace(t, await embeddedEnv(t)), formatResult)
  const skip = await missing('postgres', 'redis')
  if (skip === undefined) {
    await run('multi-instance run (3 server processes)', async () => await multiInstance(t), formatResult)
    await run('holds racing their expiry (3 server processes)', async () => await holdsRace(t), formatHoldsRace)
    await run('expiry lag with no traffic (1 server process)', async () => await expiryLag(t), formatExpiryLag)
  } else {
    console.log(`\nSKIPPED multi-instance, holds and expiry-lag runs: ${skip}`)
  }
} finally {
  await t.cleanup()
}
const failed = results.filter(r => r.violations.length > 0)
console.log(`\n${results.length - failed.length} passed, ${failed.length} failed`)
process.exit(failed.length === 0 ? 0 : 1)
