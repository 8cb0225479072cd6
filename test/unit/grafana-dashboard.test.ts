/**
 * The Grafana dashboard's layout and coverage: Grafana loads a broken layout
 * without complaint (overlapping panels, a duplicate id silently replaced), so
 * it is checked here. That its queries name exported metrics is checked by
 * test/integration/metrics.test.ts, that they parse by promtool.test.ts.
 */
import { readFileSync } from 'node:fs'
import t from 'tap'

interface Panel {
  id: number
  type: string
  title: string
  gridPos: { h: number, w: number, x: number, y: number }
  datasource?: { type: string, uid: string }
  targets?: Array<{ refId: string, expr: string, datasource?: { uid: string } }>
}

const dashboard = JSON.parse(readFileSync(new URL('../../grafana/dashboards/booking.json', import.meta.url), 'utf8')) as { panels: Panel[] }
const panels = dashboard.panels

t.test('panel ids are unique and panels fit the 24-column grid without overlapping', async t => {
  t.equal(new Set(panels.map(p => p.id)).size, panels.length, 'unique ids')
  for (const p of panels) t.ok(p.gridPos.x >= 0 && p.gridPos.x + p.gridPos.w <= 24, `${p.title} fits the width`)
  const overlap = (a: Panel['gridPos'], b: Panel['gridPos']): boolean =>
    a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h
  for (const [i, a] of panels.entries()) {
    for (const b of panels.slice(i + 1)) t.notOk(overlap(a.gridPos, b.gridPos), `${a.title} and ${b.title} do not overlap`)
  }
})

t.test('every query panel reads the provisioned Prometheus datasource', async t => {
  for (const p of panels.filter(p => p.type !== 'row')) {
    t.same(p.datasource, { type: 'prometheus', uid: 'prometheus' }, `${p.title}: panel datasource`)
    t.ok((p.targets ?? []).length > 0, `${p.title} has queries`)
    for (const q of p.targets ?? []) t.equal(q.datasource?.uid, 'prometheus', `${p.title} ${q.refId}: query datasource`)
  }
})

t.test('the Holds row shows every hold metric', async t => {
  const row = panels.find(p => p.type === 'row' && p.title === 'Holds')
  t.ok(row, 'a Holds row')
  if (row === undefined) return
  // a row's panels are those below it, up to the next row
  const next = panels.filter(p => p.type === 'row' && p.gridPos.y > row.gridPos.y).map(p => p.gridPos.y)
  const end = Math.min(Infinity, ...next)
  const exprs = panels.filter(p => p.gridPos.y > row.gridPos.y && p.gridPos.y < end).flatMap(p => (p.targets ?? []).map(q => q.expr))
  for (const metric of ['holds_total', 'hold_expired_seats_total', 'hold_confirm_seconds_bucket', 'expiry_sweeps_total', 'hold_expiry_lag_seconds_bucket']) {
    t.ok(exprs.some(e => e.includes(metric)), `a Holds panel queries ${metric}`)
  }
})
