/**
 * A whole-number benchmark option, or a clear message and exit 2: a typo must
 * not silently change what is measured.
 */
export function wholeOption(bench: string, option: string, text: string, min: number): number {
  if (!/^\d+$/.test(text.trim()) || Number(text) < min) {
    console.error(`${bench}: --${option} must be a whole number of at least ${min} (got ${JSON.stringify(text)})`);
    process.exit(2);
  }
  return Number(text);
}
