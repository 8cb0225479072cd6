/**
 * The env file read at start by the service and by `npm run token`: `.env` in
 * the working directory, or the file ENV_FILE names (empty: none; the tests'
 * servers read none). A variable already in the environment wins over the
 * file (Node's own loader never overwrites one); no file, nothing read.
 */
export function loadDotEnv (path = process.env.ENV_FILE ?? '.env'): void {
  if (path === '') return
  try {
    process.loadEnvFile(path)
  } catch (err) {
    const { code, message } = err as NodeJS.ErrnoException
    // the default file is optional; a file named in ENV_FILE must be there
    if (code === 'ENOENT' && process.env.ENV_FILE === undefined) return
    throw new Error(`env file ${path} could not be read: ${code ?? message}`)
  }
}
