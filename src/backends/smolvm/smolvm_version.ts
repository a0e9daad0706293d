/**
 * Which smolvm versions bottle supports. 1.1.0 is the floor: 0.8.0's TSI did
 * not enforce `--allow-cidr` at all (a VM could reach anything), and 1.1.0 is
 * the first to read a `docker save` archive with `machine create --image -`.
 */
export const SMOLVM_MIN_VERSION = "1.1.0";

/** `smolvm 1.2.3` -> "1.2.3". */
export function parseSmolvmVersion(output: string): string | undefined {
  return /^smolvm\s+v?(\d+\.\d+\.\d+)\b/m.exec(output.trim())?.[1];
}

export function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}
