/**
 * docs/configuration.md is generated from ConfigSchema (plugins/config.ts) by
 * `npm run docs:config`: these fail while it, or .env.example, lags the schema.
 */
import { readFileSync } from 'node:fs'
import t from 'tap'
import { ConfigSchema } from '../../plugins/config.ts'
import { COMMAND, ENV_EXAMPLE_PATH, GROUPS, REFERENCE_PATH, missingFromEnvExample, renderConfigReference } from '../../scripts/config-reference.ts'

const read = (path: string): string => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8')
const names = Object.keys(ConfigSchema.properties)

t.test('every variable of the schema has a description and one group', async t => {
  for (const name of names) {
    const description = (ConfigSchema.properties as Record<string, { description?: string }>)[name].description ?? ''
    t.ok(description.trim().length > 0, `${name} has a description in plugins/config.ts`)
    t.equal(GROUPS.filter(g => g.variables.includes(name)).length, 1, `${name} is in exactly one group of scripts/config-reference.ts`)
  }
  t.same(GROUPS.flatMap(g => g.variables).filter(v => !names.includes(v)), [], 'the groups name only variables of the schema')
})

t.test(`${REFERENCE_PATH} is what the schema gives`, async t => {
  const rendered = renderConfigReference()
  for (const name of names) t.match(rendered, `| \`${name}\` |`, `the reference has a row for ${name}`)
  let current = ''
  try { current = read(REFERENCE_PATH) } catch {}
  t.ok(current === rendered, `${REFERENCE_PATH} is out of date: run \`${COMMAND}\``)
  if (current !== rendered) t.equal(current, rendered, `the difference (run \`${COMMAND}\`)`)
})

t.test(`${ENV_EXAMPLE_PATH} names every variable`, async t => {
  t.same(missingFromEnvExample(read(ENV_EXAMPLE_PATH)), [], `${ENV_EXAMPLE_PATH} sets each variable or shows it commented out (NAME= or # NAME=)`)
})
