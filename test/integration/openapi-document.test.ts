/**
 * The OpenAPI document the app serves, as a client's tools read it: Redocly's
 * recommended ruleset finds no error in it, and types/openapi.d.ts (what a
 * typed client compiles against) is what openapi-typescript makes of it today.
 */
import { execFile } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'
import { STATUS_OF, type ApiErrorCode } from '../../lib/api/responses.ts'
import { TYPES_FILE, typesOf } from '../../scripts/openapi-types.ts'
import { buildApp } from '../helpers/build-app.ts'
import { pgliteDataDir, tempDataDir } from '../helpers/databases.ts'

const REDOCLY = fileURLToPath(new URL('../../node_modules/.bin/redocly', import.meta.url))

interface LintProblem { ruleId: string, severity: 'error' | 'warn', message: string, location: Array<{ pointer: string }> }

const app = await buildApp(t, { DATA_DIR: await pgliteDataDir(t) })
const document = (await app.inject('/docs/json')).json()

t.test('Redocly lint, recommended rules: no error', async t => {
  const file = join(tempDataDir(t, 'openapi-lint-'), 'openapi.json')
  writeFileSync(file, JSON.stringify(document))
  // it exits 1 when it finds errors: read its report either way
  const run = await promisify(execFile)(REDOCLY, ['lint', file, '--extends', 'recommended', '--format', 'json', '--max-problems', '1000'], {
    env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' }
  }).catch((err: { stdout?: string, stderr?: string }) => ({ stdout: err.stdout ?? '', stderr: err.stderr ?? '' }))
  const { problems } = JSON.parse(run.stdout) as { problems: LintProblem[] }
  const errors = problems.filter(p => p.severity === 'error')
  const warnings = problems.filter(p => p.severity === 'warn')
  t.comment(`redocly lint (recommended): ${errors.length} errors, ${warnings.length} warnings`)
  for (const p of problems) t.comment(`  ${p.severity} ${p.ruleId} ${p.location[0]?.pointer ?? ''}: ${p.message}`)
  t.same(errors.map(p => `${p.ruleId} ${p.location[0]?.pointer ?? ''}: ${p.message}`), [], 'no errors')
})

t.test('types/openapi.d.ts is generated from the document the routes describe today', async t => {
  const committed = readFileSync(TYPES_FILE, 'utf8')
  const fresh = await typesOf(document)
  t.ok(fresh === committed, 'types/openapi.d.ts is current (else run `npm run openapi:types` and commit it)')
  const operations = Object.values(document.paths as Record<string, Record<string, { operationId?: string }>>).flatMap(item => Object.values(item))
  t.comment(`typed client surface: ${Object.keys(document.components.schemas).length} named schemas (${Object.keys(document.components.schemas).join(', ')}), ` +
    `${operations.length} operations, every one with an operationId: ${operations.every(o => typeof o.operationId === 'string')}`)
  t.equal(new Set(operations.map(o => o.operationId)).size, operations.length, 'operationIds are unique')
})

t.test('each failed answer lists only codes answered with its status, and every code is listed somewhere', async t => {
  const listed = new Set<string>()
  for (const [path, item] of Object.entries(document.paths as Record<string, Record<string, { responses: Record<string, any> }>>)) {
    for (const [method, op] of Object.entries(item)) {
      for (const [status, response] of Object.entries(op.responses)) {
        const codes: ApiErrorCode[] | undefined = response.content?.['application/json']?.schema?.allOf?.[1]?.properties?.error?.properties?.code?.enum
        if (Number(status) < 400) continue
        t.ok(codes !== undefined, `${method} ${path} ${status} lists its codes`)
        for (const code of codes ?? []) {
          listed.add(code)
          if (STATUS_OF[code] !== Number(status)) t.fail(`${method} ${path} ${status} lists ${code}, answered with ${STATUS_OF[code]}`)
        }
      }
    }
  }
  t.same([...listed].sort(), Object.keys(STATUS_OF).sort(), 'every error code is declared where it can be answered')
})
