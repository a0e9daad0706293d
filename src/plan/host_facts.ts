/**
 * Gathers the host facts a plan depends on: the only impure step before
 * planning. It reads the invocation's environment (passed in, never
 * `Deno.env`), and checks the bottle-wide variables here, so that a mistake
 * in them stops `plan` and `start` alike before anything exists.
 */
import { hostname } from "node:os";
import { isAbsolute, resolve } from "node:path";
import type { Backend, VmNetworkMode } from "./plan_types.ts";
import { type EngineKind, vmNetworkFor } from "../engine/engine_kind.ts";
import type { HostFacts } from "./make_plan.ts";
import { UserError } from "../errors.ts";
import type { WorkspaceMode } from "../config/schema.ts";
import { findHostRepo, globalGitIdentity } from "../git/host_repo.ts";

/** Extra /etc/hosts entries for the bundle, `name:ip` comma-separated (docker --add-host). */
export const BUNDLE_ADD_HOSTS_ENV = "BOTTLE_BUNDLE_ADD_HOSTS";
/** Upstream CAs the bundle trusts besides the system roots, a `:`-separated list of files. */
export const UPSTREAM_CA_ENV = "BOTTLE_UPSTREAM_CA_CERTS";
/** How a smolmachines VM reaches the bundle: `sockets`, `bundle-address`, or `auto` (the engine's kind). */
export const SMOLVM_NETWORK_ENV = "BOTTLE_SMOLVM_NETWORK";

const SUFFIX_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";
const HOST_ENTRY = /^[A-Za-z0-9]([A-Za-z0-9.-]{0,252}):(\d{1,3}(\.\d{1,3}){3}|host-gateway)$/;

export interface InvocationFacts {
  env: Record<string, string | undefined>;
  cwd: string;
  stateRoot: string;
}

export async function hostFacts(
  inv: InvocationFacts,
  opts: {
    backend?: Backend;
    suffix?: string;
    workspace?: WorkspaceMode;
    fresh?: boolean;
    /** smolmachines: the engine's kind decides how the VM reaches the bundle (asked only then). */
    engineKind?: () => Promise<EngineKind>;
  },
): Promise<HostFacts> {
  const vmNetwork = opts.engineKind
    ? await vmNetworkChoice(inv.env[SMOLVM_NETWORK_ENV], opts.engineKind)
    : undefined;
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
    ...(vmNetwork ? { vmNetwork } : {}),
  };
}

/** BOTTLE_SMOLVM_NETWORK, else what suits the engine (refusing one where neither way works). */
async function vmNetworkChoice(
  setting: string | undefined,
  engineKind: () => Promise<EngineKind>,
): Promise<{ mode: VmNetworkMode; reason: string }> {
  if (setting === "bundle-address") {
    return { mode: setting, reason: `${SMOLVM_NETWORK_ENV}=${setting}` };
  }
  if (setting === "sockets") {
    // A remote engine publishes the bundle's ports on its own loopback: the
    // relay would dial whatever listens on this host's port of that number.
    const kind = await engineKind().catch(() => undefined);
    if (kind?.remote) {
      throw new UserError(
        `${SMOLVM_NETWORK_ENV}=sockets cannot work with the engine at ${kind.context.endpoint}: ` +
          "its published ports are that machine's loopback, not this one's: use --backend docker",
      );
    }
    return { mode: setting, reason: `${SMOLVM_NETWORK_ENV}=${setting}` };
  }
  if (setting && setting !== "auto") {
    throw new UserError(
      `${SMOLVM_NETWORK_ENV}: "${setting}" is not one of sockets, bundle-address, auto`,
    );
  }
  let kind: EngineKind;
  try {
    kind = await engineKind();
  } catch (err) {
    throw new UserError(
      `Cannot tell which Docker engine this is (${(err as Error).message.split("\n")[0]}), ` +
        `which decides how a smolmachines VM reaches its bundle: start the engine, or set ${SMOLVM_NETWORK_ENV}`,
    );
  }
  const choice = vmNetworkFor(kind);
  if (!choice.ok) {
    throw new UserError(
      `--backend smolmachines cannot run on this engine: ${choice.reason}: use --backend docker`,
    );
  }
  return { mode: choice.mode, reason: choice.reason };
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
