/**
 * The gate's hooks, which git runs in the bundle once per push (the agent
 * never sees or reaches them): `pre-receive` applies the policy to the
 * whole push (any broken rule rejects all of it, naming the rule and the
 * ref, commit or file) while the pushed objects are still in quarantine;
 * `post-receive` lands what was accepted in the host repository under the
 * bottle's own prefix. Both write the push and its verdict to the audit log.
 * What they print reaches the agent's `git push` as `remote:` lines.
 */
import { AuditLog } from "../audit_log.ts";
import {
  type GateConfig,
  type GateUpstream,
  type HostUpstream,
  readGateConfig,
} from "./gate_config.ts";
import { isZero, type RefUpdate, refViolation, sizeViolation, type Violation } from "./policy.ts";
import { scanPatch } from "./secret_scan.ts";
import { pushOn, type RemoteAccess } from "./remote_upstream.ts";
import { git } from "./gate_git.ts";
import { mirrorPath } from "./mirror.ts";
import { run } from "../../proc/runner.ts";

export const GATE_CONFIG_ENV = "BOTTLE_GATE_CONFIG";
export const GATE_SECRETS_ENV = "BOTTLE_GATE_SECRETS";
/** How to reach each declared upstream (remote_upstream.ts), for the push on. */
export const GATE_REMOTE_ACCESS_ENV = "BOTTLE_GATE_REMOTE_ACCESS";

/**
 * Every object a push makes reachable that no ref of the mirror reaches
 * must be in the push itself. The mirror borrows the host repository's
 * objects, which hold more than the mirror shows (other bottles' branches,
 * the stash): a ref pointed at one of those by its id would hand it to the
 * agent on its next fetch.
 */
async function foreignObjects(
  gitDir: string,
  env: Record<string, string>,
  quarantine: string,
  updates: RefUpdate[],
): Promise<Violation[]> {
  const out: Violation[] = [];
  for (const up of updates) {
    if (isZero(up.new)) continue;
    const reach = await git(gitDir, [
      "rev-list",
      "--objects",
      "--no-object-names",
      up.new,
      "--not",
      "--all",
    ], { env, check: false });
    const ids = reach.stdout.split("\n").filter(Boolean);
    if (reach.code !== 0) {
      out.push({
        rule: "foreign-object",
        ref: up.ref,
        message: `${up.ref}: its objects cannot be read`,
      });
      continue;
    }
    if (ids.length === 0) continue;
    const inPush = await git(gitDir, ["cat-file", "--batch-check=%(objectname)"], {
      env: { ...env, GIT_OBJECT_DIRECTORY: quarantine, GIT_ALTERNATE_OBJECT_DIRECTORIES: "" },
      stdin: ids.join("\n") + "\n",
      check: false,
    });
    const missing = inPush.stdout.split("\n").filter((l) => l.endsWith(" missing"));
    if (missing.length > 0) {
      out.push({
        rule: "foreign-object",
        ref: up.ref,
        message: `${up.ref} points at ${
          missing[0]!.split(" ")[0]!.slice(0, 12)
        }, which neither the push nor this repository's branches hold`,
      });
    }
  }
  return out;
}

/** Where a pushed branch lands in the host repository: its ref, and the name the user sees. */
function landingOf(u: HostUpstream, ref: string): { landing: string; short: string } {
  const branch = ref.slice("refs/heads/".length);
  return {
    landing: `${u.landingPrefix}${branch}`,
    short: `${u.landingPrefix.slice("refs/heads/".length)}${branch}`,
  };
}

/**
 * A push is refused, not accepted and then lost, where its landing could
 * not be made: the host's `bottle/<name>/<branch>` moved on (the user
 * committed there, or reset it) so that the push is no fast-forward of it.
 */
async function unlandable(
  u: HostUpstream,
  gitDir: string,
  quarantine: string,
  updates: RefUpdate[],
): Promise<Violation[]> {
  const out: Violation[] = [];
  for (const up of updates) {
    if (isZero(up.new) || !up.ref.startsWith("refs/heads/")) continue;
    const { landing, short } = landingOf(u, up.ref);
    const now = await git(u.bundlePath, ["rev-parse", "--verify", "--quiet", landing], {
      check: false,
    });
    const old = now.stdout.trim();
    if (now.code !== 0 || !old || old === up.new) continue;
    // The pushed objects are still in quarantine: the host repository sees them through it.
    const ff = await git(u.bundlePath, ["merge-base", "--is-ancestor", old, up.new], {
      env: { GIT_ALTERNATE_OBJECT_DIRECTORIES: `${quarantine}:${gitDir}/objects` },
      check: false,
    });
    if (ff.code !== 0) {
      out.push({
        rule: "landing",
        ref: up.ref,
        message:
          `${short} moved on in the host repository: ${up.ref} is not a fast-forward of it (push another branch)`,
      });
    }
  }
  return out;
}

/** Env of the hook's git commands: the repository and, in pre-receive, the quarantine. */
function repoEnv(): Record<string, string> {
  const out: Record<string, string> = {};
  for (
    const k of [
      "GIT_DIR",
      "GIT_OBJECT_DIRECTORY",
      "GIT_ALTERNATE_OBJECT_DIRECTORIES",
      "GIT_QUARANTINE_PATH",
    ]
  ) {
    const v = Deno.env.get(k);
    if (v !== undefined) out[k] = v;
  }
  return out;
}

export async function runHook(name: string): Promise<number> {
  const cfg = await readGateConfig(Deno.env.get(GATE_CONFIG_ENV) ?? "");
  const upstream = cfg.upstreams.find((u) => u.name === Deno.env.get("BOTTLE_GATE_UPSTREAM"));
  if (!upstream) {
    console.error("bottle git gate: this push names no upstream the gate serves");
    return 1;
  }
  const updates = parseUpdates(await new Response(Deno.stdin.readable).text());
  const audit = await AuditLog.open(cfg.auditLog, cfg.bottle);
  try {
    switch (name) {
      case "pre-receive":
        return await preReceive(cfg, upstream, updates, audit);
      case "post-receive":
        return await postReceive(cfg, upstream, updates, audit);
      default:
        console.error(`bottle git gate: unknown hook ${name}`);
        return 1;
    }
  } finally {
    audit.close();
  }
}

export function parseUpdates(input: string): RefUpdate[] {
  return input.split("\n").filter((l) => l.trim()).map((l) => {
    const [old, nu, ref] = l.trim().split(/\s+/);
    if (!old || !nu || !ref) throw new Error(`bad hook input line ${JSON.stringify(l)}`);
    return { old, new: nu, ref };
  });
}

async function preReceive(
  cfg: GateConfig,
  u: GateUpstream,
  updates: RefUpdate[],
  audit: AuditLog,
): Promise<number> {
  const gitDir = Deno.env.get("GIT_DIR") ?? mirrorPath(cfg.mirrorsDir, u);
  const env = repoEnv();
  const violations: Violation[] = [];
  for (const up of updates) {
    let ff: boolean | undefined;
    if (!isZero(up.old) && !isZero(up.new) && up.ref.startsWith("refs/heads/")) {
      const r = await git(gitDir, ["merge-base", "--is-ancestor", up.old, up.new], {
        env,
        check: false,
      });
      ff = r.code === 0;
    }
    const v = refViolation(up, u.policy, ff);
    if (v) violations.push(v);
  }
  const quarantine = Deno.env.get("GIT_QUARANTINE_PATH");
  const size = sizeViolation(quarantine ? await treeSize(quarantine) : 0, u.policy);
  if (size) violations.push(size);

  const tips = updates.filter((x) => !isZero(x.new)).map((x) => x.new);
  if (violations.length === 0 && tips.length > 0 && quarantine) {
    violations.push(...await foreignObjects(gitDir, env, quarantine, updates));
  }
  if (violations.length === 0 && u.kind === "host" && quarantine) {
    violations.push(...await unlandable(u, gitDir, quarantine, updates));
  }
  if (violations.length === 0 && tips.length > 0) {
    const log = await git(gitDir, [
      "log",
      "--format=commit %H",
      "-p",
      "-U0",
      "--no-color",
      // Binary files too: a key in a file with one NUL byte is still a key.
      "--text",
      "--no-ext-diff",
      "--no-textconv",
      "--no-renames",
      "--diff-merges=first-parent",
      ...tips,
      "--not",
      "--all",
    ], { env });
    const secrets = JSON.parse(Deno.env.get(GATE_SECRETS_ENV) ?? "[]") as string[];
    for (const f of scanPatch(log.stdout, secrets)) {
      violations.push({
        rule: "secret",
        message: `commit ${f.commit.slice(0, 12)} adds ${f.kind} in ${f.file} (line ${f.line})`,
      });
    }
  }
  if (violations.length === 0) {
    for (const [i, cmd] of u.policy.hooks.entries()) {
      const input = updates.map((x) => `${x.old} ${x.new} ${x.ref}\n`).join("");
      const r = await run(["sh", "-c", cmd], {
        clearEnv: true,
        env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", ...env },
        stdin: input,
        check: false,
      });
      if (r.code !== 0) {
        const said = `${r.stdout}${r.stderr}`.trim();
        violations.push({
          rule: "hook",
          message: `hook ${i + 1} (${cmd}) rejected the push${said ? `: ${said}` : ""}`,
        });
      }
    }
  }

  const refs = updates.map((x) => ({ ref: x.ref, old: x.old, new: x.new }));
  if (violations.length > 0) {
    for (const v of violations) {
      console.error(`bottle git gate: rejected: [${v.rule}] ${v.message}`);
    }
    audit.writeEvent("git-gate", {
      upstream: u.name,
      refs,
      decision: "rejected",
      reason: violations.map((v) => `[${v.rule}] ${v.message}`).join("; "),
    });
    return 1;
  }
  if (u.kind === "remote") {
    // The upstream's verdict is the push's: on its rejection nothing is kept here either.
    const access = (JSON.parse(Deno.env.get(GATE_REMOTE_ACCESS_ENV) ?? "{}") as Record<
      string,
      RemoteAccess
    >)[u.name];
    if (!access) {
      console.error(`bottle git gate: rejected: no way to reach upstream ${u.name}`);
      return 1;
    }
    const pushed = await pushOn(gitDir, access, updates, env);
    if (!pushed.ok) {
      for (const line of pushed.output.split("\n")) {
        console.error(`bottle git gate: upstream: ${line}`);
      }
      console.error(`bottle git gate: rejected: [upstream] ${u.url} refused the push`);
      audit.writeEvent("git-gate", {
        upstream: u.name,
        refs,
        decision: "rejected",
        reason: `[upstream] ${pushed.output.split("\n").slice(-3).join(" ")}`,
      });
      return 1;
    }
    for (const x of updates) {
      console.error(`bottle git gate: ${x.ref} pushed to ${u.url}`);
    }
    audit.writeEvent("git-gate", {
      upstream: u.name,
      refs,
      decision: "pushed",
      reason: u.url,
    });
    return 0;
  }
  audit.writeEvent("git-gate", { upstream: u.name, refs, decision: "accepted", reason: "policy" });
  return 0;
}

/** Lands each accepted branch in the host repository as `<landingPrefix><branch>`, never forced. */
async function postReceive(
  cfg: GateConfig,
  u: GateUpstream,
  updates: RefUpdate[],
  audit: AuditLog,
): Promise<number> {
  if (u.kind !== "host") return 0; // pushed on in pre-receive
  const mirror = mirrorPath(cfg.mirrorsDir, u);
  let failed = 0;
  for (const up of updates) {
    if (isZero(up.new) || !up.ref.startsWith("refs/heads/")) continue;
    const { landing, short } = landingOf(u, up.ref);
    const r = await git(u.bundlePath, [
      // No new reflogs; new objects into the bottle's own store (the host
      // repository's are read-only here, and borrowed for what it has).
      "-c",
      "core.logAllRefUpdates=false",
      "fetch",
      "--quiet",
      "--no-tags",
      "--no-write-fetch-head",
      "--no-recurse-submodules",
      "--no-auto-gc",
      mirror,
      `${up.ref}:${landing}`,
    ], {
      check: false,
      ...(u.objectStore
        ? {
          env: {
            GIT_OBJECT_DIRECTORY: u.objectStore,
            GIT_ALTERNATE_OBJECT_DIRECTORIES: `${u.bundlePath}/objects`,
          },
        }
        : {}),
    });
    if (r.code === 0 && u.copied) {
      console.error(
        `bottle git gate: ${up.ref} kept as ${short}: \`bottle fetch ${cfg.bottle}\` (or stop) brings it to the host repository`,
      );
    } else if (r.code === 0) {
      console.error(`bottle git gate: ${up.ref} landed in the host repository as ${short}`);
    } else {
      failed++;
      console.error(
        `bottle git gate: ${up.ref} could not land in the host repository as ${short}: ${r.stderr.trim()}`,
      );
    }
    audit.writeEvent("git-gate", {
      upstream: u.name,
      refs: [{ ref: up.ref, old: up.old, new: up.new }],
      decision: r.code === 0 ? "landed" : "landing-failed",
      reason: r.code === 0 ? landing : r.stderr.trim(),
      landing,
    });
  }
  return failed > 0 ? 1 : 0;
}

async function treeSize(dir: string): Promise<number> {
  let total = 0;
  for await (const e of Deno.readDir(dir)) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory) total += await treeSize(p);
    else if (e.isFile) total += (await Deno.stat(p)).size;
  }
  return total;
}
