/**
 * What to tell a client whose parameter does not match a schema's `pattern`.
 * Ajv reports a mismatch by quoting the regular expression, which says little
 * to a person; each pattern the schemas use is registered here with a hint
 * (`hinted`), and the error mapping looks the hint up (`patternHint`).
 */
const hints = new Map<string, string>();

/** `pattern`, registered with what a matching value looks like ("must be <hint>"). */
export function hinted(pattern: string, hint: string): string {
  hints.set(pattern, hint);
  return pattern;
}

/** The hint registered for a pattern, if any. */
export function patternHint(pattern: unknown): string | undefined {
  return typeof pattern === 'string' ? hints.get(pattern) : undefined;
}
