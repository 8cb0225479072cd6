/**
 * `date.toISOString()`, kept for the last Date asked about: every section and
 * booking of a batch is stamped with the batch's one moment (one Date object,
 * never changed once made), which is then turned into text once.
 */
let lastDate: Date | undefined
let lastText = ''

export function isoText (date: Date): string {
  if (date !== lastDate) {
    lastText = date.toISOString()
    lastDate = date
  }
  return lastText
}
