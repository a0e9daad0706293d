/**
 * Gathers the host facts a plan depends on: the only impure step before
 * planning. It reads the invocation's environment (passed in, never
 * `Deno.env`), and checks the bottle-wide variables here, so that a mistake
 * in them stops `plan` and `start` alike before anything exists.
 */
import { hostname } from "node:os";
import { isAbsolute, resolve } from "node:path";
import type { Backend } from "./plan_types.ts";
import type { HostFacts } from "./make_plan.ts";
import { UserError } from "../errors.ts";
import type { WorkspaceMode } from "../config/schema.ts";
import { findHostRepo, globalGitIdentity } from "../git/host_repo.ts";

/** Extra /etc/hosts entries for the bundle, `name:ip` comma-separated (docker --add-host). */
export const BUNDLE_ADD_HOSTS_ENV = "BOTTLE_BUNDLE_ADD_HOSTS";
/** Upstream CAs the bundle trusts besides the system roots, a `:`-separated list of files. */
export const UPSTREAM_CA_ENV = "BOTTLE_UPSTREAM_CA_CERTS";

const SUFFIX_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";
const HOST_ENTRY = /^[A-Za-z0-9]([A-Za-z0-9.-]{0,252}):(\d{1,3}(\.\d{1,3}){3}|host-gateway)$/;

export interface InvocationFacts {
  env: Record<string, string | undefined>;
  cwd: string;
  stateRoot: string;
}

export async function hostFacts(
  inv: InvocationFacts,
  opts: { backend?: Backend; suffix?: string; workspace?: WorkspaceMode; fresh?: boolean },
): Promise<HostFacts> {
  // `none` needs no repository: its lookup is skipped.
  const repo = opts.workspace === "none" ? undefined : await findHostRepo(inv.cwd);
  const uid = Deno.uid();
  const gid = Deno.gid();
  return {
    suffix: opts.suffix ?? randomSuffix(),
    stateRoot: inv.stateRoot,
    ownerHost: hostname(),
    ownerPid: Deno.pid,
    hostEnvNames: new Set(Object.keys(inv.env).filter((k) => inv.env[k])),
    bundleAddHosts: bundleAddHosts(inv.env[BUNDLE_ADD_HOSTS_ENV]),
    upstreamCaFiles: await upstreamCaFiles(inv.env[UPSTREAM_CA_ENV], inv.cwd),
    ...(opts.backend ? { backend: opts.backend } : {}),
    cwd: inv.cwd,
    ...(repo ? { repo } : {}),
    ...(uid !== null && gid !== null ? { hostUser: { uid, gid } } : {}),
    engineSharesFilesystem: sharesFilesystem(inv.env),
    ...(opts.workspace ? { workspace: opts.workspace } : {}),
    ...(opts.fresh ? { freshHome: true } : {}),
    ...(inv.env.HOME ? { homeDir: inv.env.HOME } : {}),
    ...(repo ? {} : { gitIdentity: await globalGitIdentity() }),
  };
}

/**
 * Whether the docker engine sees this host's paths: a local socket does
 * (Docker Desktop shares the user's files too); a TCP or SSH DOCKER_HOST,
 * or a named context, may be another machine.
 */
function sharesFilesystem(env: Record<string, string | undefined>): boolean {
  const host = env.DOCKER_HOST;
  if (env.DOCKER_CONTEXT && env.DOCKER_CONTEXT !== "default") return false;
  return !host || host.startsWith("unix://");
}

function bundleAddHosts(value: string | undefined): string[] {
  const entries = (value ?? "").split(",").map((s) => s.trim()).filter(Boolean);
  for (const e of entries) {
    if (!HOST_ENTRY.test(e)) {
      throw new UserError(
        `${BUNDLE_ADD_HOSTS_ENV}: bad entry "${e}": expected name:IPv4 or name:host-gateway, comma-separated`,
      );
    }
  }
  return entries;
}

async function upstreamCaFiles(value: string | undefined, cwd: string): Promise<string[]> {
  const files = (value ?? "").split(":").filter(Boolean).map((f) =>
    isAbsolute(f) ? f : resolve(cwd, f)
  );
  for (const f of files) {
    let text: string;
    try {
      text = await Deno.readTextFile(f);
    } catch (err) {
      throw new UserError(`${UPSTREAM_CA_ENV}: cannot read "${f}": ${(err as Error).message}`);
    }
    if (!text.includes("-----BEGIN CERTIFICATE-----")) {
      throw new UserError(`${UPSTREAM_CA_ENV}: "${f}" holds no PEM certificate`);
    }
  }
  return files;
}

function randomSuffix(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(6));
  return [...bytes].map((b) => SUFFIX_ALPHABET[b % SUFFIX_ALPHABET.length]).join("");
}
