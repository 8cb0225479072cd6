/**
 * Every string a route takes (body, query, params, headers), in every route
 * the app registers, refuses a NUL and an unpaired surrogate: a new field
 * without the text pattern (lib/api/schemas.ts TEXT_PATTERN) or an ASCII pattern
 * fails here, before it can carry what a store cannot hold.
 */
import Fastify, { type RouteOptions } from 'fastify'
import fp from 'fastify-plugin'
import { Ajv } from 'ajv'
import t from 'tap'
import app, { appOptions } from '../../app.ts'
import { pgliteDataDir } from '../helpers/databases.ts'
import { withTestAuth } from '../helpers/tokens.ts'

interface StringSchema { type: 'string', pattern?: string, examples?: string[], minLength?: number }

/** Every schema of type string inside `schema`, with its path. */
function strings (schema: unknown, path: string): Array<[string, StringSchema]> {
  if (schema === null || typeof schema !== 'object') return []
  const s = schema as Record<string, unknown>
  const found: Array<[string, StringSchema]> = s.type === 'string' ? [[path, s as unknown as StringSchema]] : []
  for (const [key, value] of Object.entries(s)) {
    if (key === 'properties' && value !== null && typeof value === 'object') {
      for (const [name, property] of Object.entries(value)) found.push(...strings(property, `${path}.${name}`))
    } else if (key === 'items' || key === 'anyOf' || key === 'oneOf' || key === 'allOf') {
      for (const sub of [value].flat()) found.push(...strings(sub, path))
    }
  }
  return found
}

t.test('every input string of every route refuses NUL and unpaired surrogates', async t => {
  const fastify = Fastify(appOptions({ logger: { level: 'silent' } }))
  const routes: RouteOptions[] = []
  fastify.addHook('onRoute', route => { routes.push(route) })
  await fastify.register(fp(app), { env: withTestAuth({ DATA_DIR: await pgliteDataDir(t), LOG_LEVEL: 'silent' }) })
  t.teardown(async () => await fastify.close())
  await fastify.ready()

  // compiled as plugins/errors.ts compiles them: Ajv's patterns use the `u` flag
  const ajv = new Ajv({ strict: false })
  let checked = 0
  for (const route of routes) {
    for (const part of ['body', 'querystring', 'params', 'headers'] as const) {
      for (const [field, schema] of strings(route.schema?.[part], part)) {
        const where = `${[route.method].flat().join(',')} ${route.url} ${field}`
        const valid = schema.examples?.[0] ?? 'a'.repeat(Math.max(1, schema.minLength ?? 1))
        const validate = ajv.compile(schema)
        for (const bad of [`${valid}\u0000`, `\u0000${valid}`, `${valid}\uD800`, `\uDC00${valid}`]) {
          t.notOk(validate(bad), `${where} refuses ${JSON.stringify(bad)}`)
        }
        checked++
      }
    }
  }
  t.ok(checked >= 10, `${checked} input strings checked`)
})
