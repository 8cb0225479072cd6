/**
 * A small parser of the Prometheus text format (version 0.0.4): strict, so a
 * malformed exposition fails the test instead of being skipped over.
 */
export interface Sample { name: string, labels: Record<string, string>, value: number }
export interface Exposition {
  samples: Sample[]
  types: Map<string, string>
  help: Map<string, string>
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/

// Prometheus reads values with Go's ParseFloat: NaN and Inf in any letter case
// (prom-client writes an empty event-loop-lag gauge as "Nan").
function parseValue (raw: string, line: string): number {
  const word = raw.toLowerCase()
  if (word === '+inf' || word === 'inf') return Infinity
  if (word === '-inf') return -Infinity
  if (word === 'nan') return NaN
  const value = Number(raw)
  if (raw === '' || Number.isNaN(value)) throw new Error(`bad sample value ${JSON.stringify(raw)} in line: ${line}`)
  return value
}

/** Parses `{a="x",b="y\"z"}` starting at text[0] === '{'; returns the labels and what follows. */
function parseLabels (text: string, line: string): { labels: Record<string, string>, rest: string } {
  const labels: Record<string, string> = {}
  let i = 1
  for (;;) {
    if (text[i] === '}') return { labels, rest: text.slice(i + 1) }
    const name = LABEL_NAME.exec(text.slice(i))?.[0]
    if (name === undefined) throw new Error(`bad label name in line: ${line}`)
    i += name.length
    if (text[i] !== '=' || text[i + 1] !== '"') throw new Error(`expected =" after label ${name} in line: ${line}`)
    i += 2
    let value = ''
    for (;;) {
      const c = text[i]
      if (c === undefined) throw new Error(`unterminated label value in line: ${line}`)
      if (c === '"') break
      if (c === '\\') {
        const next = text[i + 1]
        if (next === 'n') value += '\n'
        else if (next === '\\' || next === '"') value += next
        else throw new Error(`bad escape \\${next} in line: ${line}`)
        i += 2
      } else {
        value += c
        i++
      }
    }
    i++ // closing quote
    if (name in labels) throw new Error(`label ${name} repeated in line: ${line}`)
    labels[name] = value
    if (text[i] === ',') i++
    else if (text[i] !== '}') throw new Error(`expected , or } after label ${name} in line: ${line}`)
  }
}

export function parseExposition (text: string): Exposition {
  const result: Exposition = { samples: [], types: new Map(), help: new Map() }
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue
    if (line.startsWith('#')) {
      const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) ?(.*)$/.exec(line)
      if (meta === null) continue // a plain comment
      const [, kind, name, rest] = meta
      if (kind === 'TYPE') {
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(rest)) throw new Error(`bad TYPE in line: ${line}`)
        if (result.types.has(name)) throw new Error(`TYPE of ${name} given twice`)
        result.types.set(name, rest)
      } else {
        result.help.set(name, rest)
      }
      continue
    }
    const name = NAME.exec(line)?.[0]
    if (name === undefined) throw new Error(`bad metric name in line: ${line}`)
    let rest = line.slice(name.length)
    let labels: Record<string, string> = {}
    if (rest.startsWith('{')) ({ labels, rest } = parseLabels(rest, line))
    const parts = rest.trim().split(/\s+/)
    if (!/^\s/.test(rest) || parts.length < 1 || parts.length > 2) throw new Error(`bad sample in line: ${line}`)
    const value = parseValue(parts[0], line)
    if (parts[1] !== undefined && !/^-?\d+$/.test(parts[1])) throw new Error(`bad timestamp in line: ${line}`)
    result.samples.push({ name, labels, value })
  }
  return result
}

function matches (sample: Sample, name: string, labels: Record<string, string>): boolean {
  return sample.name === name && Object.entries(labels).every(([k, v]) => sample.labels[k] === v)
}

/** The one sample of that name whose labels include these; throws when there is none or several. */
export function one (exposition: Exposition, name: string, labels: Record<string, string> = {}): number {
  const found = exposition.samples.filter(s => matches(s, name, labels))
  if (found.length !== 1) throw new Error(`expected one sample ${name}${JSON.stringify(labels)}, found ${found.length}`)
  return found[0].value
}

/** Sum over every sample of that name whose labels include these (0 when none). */
export function total (exposition: Exposition, name: string, labels: Record<string, string> = {}): number {
  return exposition.samples.filter(s => matches(s, name, labels)).reduce((sum, s) => sum + s.value, 0)
}

/** Scrapes a running server's /metrics. */
export async function scrapeUrl (baseUrl: string): Promise<Exposition> {
  const res = await fetch(`${baseUrl}/metrics`)
  if (!res.ok) throw new Error(`GET /metrics answered ${res.status}`)
  return parseExposition(await res.text())
}

/** Sum of total() over several servers' /metrics (what an operator sums over the instances). */
export async function totalOver (baseUrls: string[], name: string, labels: Record<string, string> = {}): Promise<number> {
  const scraped = await Promise.all(baseUrls.map(scrapeUrl))
  return scraped.reduce((sum, e) => sum + total(e, name, labels), 0)
}
