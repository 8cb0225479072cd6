/**
 * Loaded first into every test process (package.json, tap's node-arg). V8 in
 * Node 24 now and then aborts a process that creates and closes many PGlite
 * instances, as the tests do: "Check failed: jit_page_->allocations_.erase(addr)
 * == 1", in WasmImportWrapperCache::Free reached from
 * Runtime_TierUpWasmToJSWrapper (nodejs/node#64500; seen here in two CI runs of
 * five). Import wrappers that never tier up are never freed on that path. For
 * tests only: a server runs one PGlite for its whole life.
 */
import { setFlagsFromString } from 'node:v8'

if (Number(process.versions.node.split('.')[0]) >= 24) setFlagsFromString('--wasm-wrapper-tiering-budget=2147483647')
