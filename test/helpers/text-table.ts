/** Rows as aligned text columns (the first row a header), for t.comment. */
export function textTable (rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map(r => (r[i] ?? '').length)))
  const line = (r: string[]): string => r.map((cell, i) => cell.padEnd(widths[i])).join(' | ').trimEnd()
  return [line(rows[0]), widths.map(w => '-'.repeat(w)).join('-|-'), ...rows.slice(1).map(line)].join('\n')
}
