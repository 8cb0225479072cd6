/**
 * Development mode (no AUTH_* set): tokens are still required, signed with a
 * secret generated once under DATA_DIR, which `npm run token` reads too.
 */
import { randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

export const DEV_SECRET_FILE = 'auth-secret'

/** The secret under dataDir, created (readable by its owner only) the first time. */
export function devSecret (dataDir: string): { secret: string, file: string, created: boolean } {
  const file = join(dataDir, DEV_SECRET_FILE)
  mkdirSync(dataDir, { recursive: true })
  try {
    // 'wx': of two processes starting at once, one writes and the other reads what it wrote
    writeFileSync(file, randomBytes(48).toString('base64url'), { flag: 'wx', mode: 0o600 })
    return { secret: readFileSync(file, 'utf8').trim(), file, created: true }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    return { secret: readFileSync(file, 'utf8').trim(), file, created: false }
  }
}
