import t from 'tap'
import { missing } from '../helpers/services.ts'
import { STORE_ADAPTERS } from './adapters.ts'
import { storeContract } from './contract.ts'

for (const adapter of STORE_ADAPTERS) {
  const skip = await missing(...adapter.needs)
  if (skip !== undefined) console.log(`# SKIPPED store contract on ${adapter.name}: ${skip}`)
  t.test(`store contract: ${adapter.name}`, { skip }, async t => { storeContract(t, adapter) })
}
