/**
 * Strings in code-unit order (not the locale's): the one order the batch
 * keeps its sections, users and lock keys in, the same on every instance.
 */
export const byText = (a: string, b: string): number => a < b ? -1 : a > b ? 1 : 0
