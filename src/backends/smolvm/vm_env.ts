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

/**
 * The guest file holding the agent's secret variables (the proxy URLs with
 * the proxy credential): smolvm takes guest env only on its argv, which
 * every local user can read, so these come on stdin into this file instead
 * (root's, readable by the agent: the credential is the agent's own), and
 * every command the runtime runs reads it first.
 */
export const GUEST_SECRET_ENV_FILE = "/etc/bottle/agent.env";

/** The file's text: one `NAME='value'` per line, for `sh`'s `.` under `set -a`. */
export function secretEnvFile(env: Record<string, string>): string {
  return Object.entries(env).map(([k, v]) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new TypeError(`Bad guest env name "${k}"`);
    if (/['\n\0]/.test(v)) throw new TypeError(`Guest env "${k}" holds a quote or line break`);
    return `${k}='${v}'\n`;
  }).join("");
}

/** Writes the file as root; its text comes on stdin. */
export const WRITE_SECRET_ENV = [
  "sh",
  "-c",
  `umask 022 && mkdir -p "$(dirname "$0")" && cat > "$0"`,
  GUEST_SECRET_ENV_FILE,
];

/** argv run with the file's variables exported (where it exists). */
export function withSecretEnv(argv: string[]): string[] {
  return [
    "sh",
    "-c",
    `[ ! -r ${GUEST_SECRET_ENV_FILE} ] || { set -a; . ${GUEST_SECRET_ENV_FILE}; set +a; }; exec "$@"`,
    "bottle-env",
    ...argv,
  ];
}
