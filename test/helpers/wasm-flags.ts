/**
 * Loaded first into every test process (package.json, tap's node-arg): V8's
 * flags for WebAssembly, that is for PGlite, the embedded store.
 *
 * V8 in Node 24 now and then aborts a process that creates and closes many
 * PGlite instances, as the tests do: "Check failed: jit_page_->allocations_.erase(addr)
 * == 1", in WasmImportWrapperCache::Free reached from
 * Runtime_TierUpWasmToJSWrapper (nodejs/node#64500; seen here in two CI runs of
 * five). Import wrappers that never tier up are never freed on that path. For
 * tests only: a server runs one PGlite for its whole life.
 *
 * WebAssembly stays on V8's baseline compiler (Liftoff), in the test processes
 * and in the servers they start (server-process.ts passes TEST_SERVER_NODE_FLAGS
 * on). Otherwise a process that opens PGlite spends about two seconds of CPU
 * optimising it in the background, and waits for that work when it exits: CPU a
 * test's short-lived PGlite never earns back, taken from the test running beside
 * it on a two-core machine. What the code does is the same on either compiler.
 */
import { setFlagsFromString } from 'node:v8'

if (Number(process.versions.node.split('.')[0]) >= 24) setFlagsFromString('--wasm-wrapper-tiering-budget=2147483647')

const BASELINE_ONLY = ['--no-wasm-tier-up', '--no-wasm-dynamic-tiering']
for (const flag of BASELINE_ONLY) setFlagsFromString(flag)
process.env.TEST_SERVER_NODE_FLAGS = BASELINE_ONLY.join(' ')
