import t from 'tap'
import { cpuCost, cpuLine, parseCpuSeconds } from '../../bench/cpu.ts'

const exposition = [
  '# HELP process_cpu_user_seconds_total Total user CPU time spent in seconds.',
  '# TYPE process_cpu_user_seconds_total counter',
  'process_cpu_user_seconds_total 1.5',
  '# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.',
  '# TYPE process_cpu_seconds_total counter',
  'process_cpu_seconds_total 2.345678',
  'process_start_time_seconds 1700000000'
].join('\n')

t.test('the CPU seconds are the process_cpu_seconds_total sample, not the user or system one', async t => {
  t.equal(parseCpuSeconds(exposition), 2.345678)
})

t.test('a sample with labels or a timestamp, or in exponent notation, is read too', async t => {
  t.equal(parseCpuSeconds('process_cpu_seconds_total{instance="a"} 3.25'), 3.25)
  t.equal(parseCpuSeconds('process_cpu_seconds_total 4.5 1700000000000'), 4.5)
  t.equal(parseCpuSeconds('process_cpu_seconds_total 1.2e-3'), 0.0012)
})

t.test('no sample, or one that is not a number, is an error that names the metric', async t => {
  t.throws(() => parseCpuSeconds('# TYPE process_cpu_seconds_total counter\nprocess_cpu_user_seconds_total 1'), /no process_cpu_seconds_total/)
  t.throws(() => parseCpuSeconds('process_cpu_seconds_total NaN'), /process_cpu_seconds_total is not a number/)
})

t.test('the cost is the CPU-ms between the two readings per booking of the run', async t => {
  const cost = cpuCost(2.5, 3.0, 2000)
  t.equal(cost.cpuMs, 500)
  t.equal(cost.perBookingMs, 0.25)
  t.same([cost.beforeSeconds, cost.afterSeconds, cost.bookings], [2.5, 3.0, 2000])
  t.equal(cpuCost(1, 2, 0).perBookingMs, null, 'no booking: no cost per booking')
})

t.test('the line names the row, the figure to two decimals, and that it is the service process only', async t => {
  t.equal(cpuLine('hot / postgres / batch default', cpuCost(1, 1.42, 2000)), 'cpu: hot / postgres / batch default: 0.21 CPU-ms per booking (service process only)')
  t.equal(cpuLine('onsale / embedded / batch 1', cpuCost(1, 2, 400), 'booking or hold'), 'cpu: onsale / embedded / batch 1: 2.50 CPU-ms per booking or hold (service process only)')
  t.equal(cpuLine('checkout-confirm / postgres / batch default', cpuCost(1, 1.5, 2500), 'confirm'), 'cpu: checkout-confirm / postgres / batch default: 0.20 CPU-ms per confirm (service process only)')
  t.equal(cpuLine('spread / embedded / batch 1', cpuCost(1, 1.5, 0)), 'cpu: spread / embedded / batch 1: n/a (no booking in 500 CPU-ms) (service process only)')
})
