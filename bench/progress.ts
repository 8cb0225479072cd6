/**
 * Progress on the terminal: `log` prints a line, `update` rewrites one status
 * line in place (only on a TTY; piped output gets the `log` lines alone).
 */
const out = process.stdout
const tty = out.isTTY === true
let statusShown = false

function clearStatus (): void {
  if (statusShown) {
    out.write('\r\x1b[2K')
    statusShown = false
  }
}

export const progress = {
  log (line: string): void {
    clearStatus()
    out.write(line + '\n')
  },
  update (line: string): void {
    if (!tty) return
    out.write('\r\x1b[2K' + line.slice(0, (out.columns ?? 120) - 1))
    statusShown = true
  },
  done (): void {
    clearStatus()
  }
}
