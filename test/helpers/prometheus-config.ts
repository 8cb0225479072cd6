/**
 * prometheus.yml as shipped, and its variant for a service with METRICS_TOKEN
 * set: the three commented lines after "With METRICS_TOKEN set" uncommented,
 * as an operator would, with credentials_file pointing at a file holding the token.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const PROMETHEUS_YML = fileURLToPath(new URL('../../prometheus.yml', import.meta.url))

/** The shipped config, as text. */
export function shippedConfig (): string {
  return readFileSync(PROMETHEUS_YML, 'utf8')
}

/** The authorization block as it must read once uncommented (credentials_file is set apart). */
const AUTHORIZATION = [/^\s+authorization:$/, /^\s+type: Bearer$/, /^\s+credentials_file: \S+$/]

/**
 * Writes `token` alone to dir/metrics-token and returns the shipped config with
 * its authorization block uncommented, credentials_file set to that file.
 * Throws when prometheus.yml no longer has the block where its comment says.
 */
export function configWithMetricsToken (dir: string, token: string): string {
  const file = join(dir, 'metrics-token')
  writeFileSync(file, `${token}\n`, { mode: 0o600 })
  const lines = shippedConfig().split('\n')
  const marker = lines.findIndex(line => line.includes('With METRICS_TOKEN set'))
  const start = lines.findIndex((line, i) => marker !== -1 && i > marker && /^\s*# authorization:\s*$/.test(line))
  const block = start === -1 ? [] : lines.slice(start, start + AUTHORIZATION.length).map(line => line.replace(/^(\s*)# /, '$1'))
  if (block.length !== AUTHORIZATION.length || !AUTHORIZATION.every((pattern, i) => pattern.test(block[i]))) {
    throw new Error('prometheus.yml has no commented authorization block (authorization, type: Bearer, credentials_file) after "With METRICS_TOKEN set"')
  }
  // a JSON string is a YAML double-quoted scalar
  block[2] = block[2].replace(/credentials_file: .*$/, `credentials_file: ${JSON.stringify(file)}`)
  lines.splice(start, block.length, ...block)
  return lines.join('\n')
}
