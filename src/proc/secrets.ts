/**
 * Process-wide registry of secret values. Every secret bottle resolves is
 * registered here the moment it is read, so that any text bound for a user
 * (error messages, argv in errors, logs) can be scrubbed in one place instead
 * of trusting each caller to remember.
 */
const secrets = new Set<string>();

/** Values shorter than this are not redacted: they would shred ordinary text. */
const MIN_SECRET_LENGTH = 4;

export function registerSecret(value: string): void {
  if (value.length >= MIN_SECRET_LENGTH) secrets.add(value);
}

/** Replaces every registered secret in `text` with `***`. */
export function redact(text: string): string {
  let out = text;
  for (const s of secrets) {
    if (out.includes(s)) out = out.split(s).join("***");
  }
  return out;
}

/** For tests: forget every registered secret. */
export function clearSecrets(): void {
  secrets.clear();
}
