/**
 * What the VM runtime fills in and wraps: the bundle's address where the
 * plan says `{bundle.address}` (the VM has no DNS, closed on purpose), and
 * argv run as a given user (`machine exec` runs as root in the guest).
 */
import { BUNDLE_ADDRESS } from "../../plan/plan_types.ts";

export function withBundleAddress(value: string, address: string): string {
  return value.replaceAll(BUNDLE_ADDRESS, address);
}

export function envWithBundleAddress(
  env: Record<string, string>,
  address: string,
): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env).map(([k, v]) => [k, withBundleAddress(v, address)]),
  );
}

const USER = /^[a-z_][a-z0-9_-]{0,31}$|^\d+$/;

/** Runs argv as `user` (name or uid) with its own groups; root runs it as is. */
export function asUser(user: string, argv: string[]): string[] {
  if (user === "root" || user === "0") return argv;
  if (!USER.test(user)) throw new Error(`Invalid guest user "${user}"`);
  return ["setpriv", `--reuid=${user}`, `--regid=${user}`, "--init-groups", "--", ...argv];
}
