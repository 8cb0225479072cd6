/** `npm run test:concurrency`: the concurrency scenarios with a table each; exits non-zero on any violation. */
import { scriptContext } from '../helpers/context.ts'
import { missing } from '../helpers/services.ts'
import { embeddedEnv, formatResult, multiInstance, seedRace, type ScenarioResult } from './concurrency-scenarios.ts'

const t = scriptContext()
const results: ScenarioResult[] = []
try {
  console.log('seed race on the embedded store ...')
  results.push(await seedRace(t, embeddedEnv(t)))
  console.log(formatResult(results.at(-1)!))
  const skip = await missing('postgres', 'redis')
  if (skip === undefined) {
    console.log('\nmulti-instance run (3 server processes) ...')
    results.push(await multiInstance(t))
    console.log(formatResult(results.at(-1)!))
  } else {
    console.log(`\nSKIPPED multi-instance run: ${skip}`)
  }
} finally {
  await t.cleanup()
}
const failed = results.filter(r => r.violations.length > 0)
console.log(`\n${results.length - failed.length} passed, ${failed.length} failed`)
process.exit(failed.length === 0 ? 0 : 1)
