/**
 * Provisioning, written once for both runtimes: the plan's steps, carried
 * out through the runtime's exec and copy-in. Root does only root's part
 * (appending the bottle's CAs to the system trust, in root-owned paths);
 * everything in the agent's home is written by the agent user itself, as
 * one tar extracted in one call, so nothing the agent could have put there
 * (a symlink at a target path) can make a root step touch another file.
 */
import { basename, join, relative } from "node:path";
import type { AgentRuntime } from "../agent_runtime.ts";
import type { Plan } from "../../plan/plan_types.ts";
import { type TarEntryInput, writeTar } from "../../archive/tar.ts";
import { UserError } from "../../errors.ts";
import { restoreKeptHome } from "../kept_home.ts";

export async function provision(
  runtime: AgentRuntime,
  place: string,
  plan: Plan,
  agentTrustPem: string,
  /** Settles once the bundle serves (a clone needs the git gate). */
  bundleReady: Promise<unknown> = Promise.resolve(),
  /** The gate's and supervise's tokens, for the steps that say they need them. */
  secrets: { gateToken?: string; superviseToken?: string } = {},
): Promise<void> {
  const home = plan.agent.home;
  // The kept home first: every later step writes over it (the prompt, skills, supervise).
  const kept = plan.agent.keptHome;
  if (kept?.restore) await restoreKeptHome(runtime, place, plan.agent.user, home, kept.hostFile);
  const homeEntries: TarEntryInput[] = [];
  const calls: Promise<unknown>[] = [];
  let clones: Promise<unknown> = bundleReady;
  const gateToken = () => {
    if (!secrets.gateToken) throw new Error("provision: a clone needs the gate's token");
    return secrets.gateToken;
  };
  for (const step of plan.provision) {
    switch (step.step) {
      case "ca-trust":
        // One write to each file: the bottle's own CA file and the system
        // bundle, without rehashing every certificate.
        calls.push(
          runtime.exec(place, ["tee", "-a", step.appendTo, step.guestPath], {
            user: step.user,
            stdin: new TextEncoder().encode(agentTrustPem),
          }),
        );
        break;
      case "prompt": {
        const text = step.text ?? await Deno.readTextFile(step.file!);
        homeEntries.push(...withParents(underHome(home, step.guestPath), { data: text }));
        break;
      }
      case "clone":
        // Once the bundle serves: nothing else waits for it. One at a time,
        // as each may write the agent's ~/.gitconfig.
        clones = clones.then(() =>
          runtime.exec(place, [
            "sh",
            "-c",
            CLONE_SCRIPT,
            "clone",
            step.url,
            step.path,
            step.identity.name ?? "",
            step.identity.email ?? "",
            step.insteadOf ?? "",
            step.gateToken ? "1" : "0",
          ], {
            user: step.user,
            ...(step.gateToken ? { stdin: new TextEncoder().encode(gateToken()) } : {}),
          })
        );
        break;
      case "mcp": {
        const token = step.token ? secrets.superviseToken : "";
        if (token === undefined) throw new Error("provision: supervise needs its token");
        calls.push(
          runtime.exec(place, [
            "sh",
            "-c",
            MCP_SCRIPT,
            "mcp",
            step.name,
            step.url,
            String(step.timeoutMs),
          ], { user: step.user, stdin: new TextEncoder().encode(token) }),
        );
        break;
      }
      case "skills":
        for (const dir of step.dirs) {
          const dest = underHome(home, `${step.guestDir}/${basename(dir)}`);
          homeEntries.push(...withParents(dest, { directory: true }));
          homeEntries.push(...await treeEntries(dir, dest));
        }
        break;
    }
  }
  const user = plan.agent.user;
  const homeCall = homeEntries.length > 0
    ? runtime.copyIn(place, home, writeTar(dedupe(homeEntries)), user)
    : Promise.resolve();
  const results = await Promise.allSettled([...calls, clones, homeCall]);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) throw failed.reason;
}

/**
 * Clones into the (empty) target, makes every remote branch a local one
 * tracking it, and sets the user's name and email for the agent's commits.
 * A declared upstream is cloned by its real URL, which the agent's git
 * rewrites to the gate's, so `origin` reads as the user wrote it. Where the
 * gate wants its token (read from stdin), the agent's git sends it to the
 * gate alone, as a header of every request there.
 */
const CLONE_SCRIPT = `set -eu
url=$1 dir=$2 name=$3 email=$4 real=$5 token=$6
export GIT_TERMINAL_PROMPT=0
if [ "$token" = 1 ]; then
  gate=$(printf '%s' "$url" | sed -E 's#^(https?://[^/]+/).*#\\1#')
  basic=$(printf 'bottle:%s' "$(cat)" | base64 | tr -d '\\n')
  git config --global "http.$gate.extraHeader" "Authorization: Basic $basic"
fi
if [ -n "$real" ]; then
  git config --global "url.$url.insteadOf" "$real"
  url=$real
fi
git clone --quiet -- "$url" "$dir"
cd "$dir"
current=$(git symbolic-ref --quiet --short HEAD || true)
git for-each-ref --format='%(refname:strip=3)' refs/remotes/origin | while read -r b; do
  case "$b" in HEAD|"$current"|-*) continue;; esac
  git branch --quiet --track "$b" "origin/$b"
done
[ -z "$name" ] || git config user.name "$name"
[ -z "$email" ] || git config user.email "$email"
`;

/**
 * Registers an MCP server with Claude Code for the agent user (user scope:
 * every directory). A token, where there is one, comes on stdin and goes
 * into the server's Authorization header.
 */
const MCP_SCRIPT = `set -eu
name=$1 url=$2 timeout=$3
token=$(cat)
headers=
[ -z "$token" ] || headers=$(printf ',"headers":{"Authorization":"Bearer %s"}' "$token")
claude mcp add-json --scope user "$name" \\
  "$(printf '{"type":"http","url":"%s","timeout":%s%s}' "$url" "$timeout" "$headers")" >/dev/null
`;

/** The path relative to home, refusing anything the agent's home does not hold. */
function underHome(home: string, guestPath: string): string {
  const rel = relative(home, guestPath);
  if (rel === "" || rel.startsWith("..") || rel.startsWith("/")) {
    throw new Error(`Provisioning target "${guestPath}" is not inside the agent's home "${home}"`);
  }
  return rel;
}

/** Directory entries for every parent of `rel`, then `rel` itself. */
function withParents(
  rel: string,
  what: { data: string } | { directory: true },
): TarEntryInput[] {
  const parts = rel.split("/");
  const dirs = parts.slice(0, -1).map((_, i) => parts.slice(0, i + 1).join("/"));
  const self: TarEntryInput = "data" in what
    ? { path: rel, type: "file", mode: 0o644, data: what.data }
    : { path: rel, type: "directory", mode: 0o755 };
  return [...dirs.map((d) => ({ path: d, type: "directory" as const, mode: 0o755 })), self];
}

/** Every file and dir under a host skill dir, at `dest`; symlinks are followed to files only. */
async function treeEntries(root: string, dest: string, rel = ""): Promise<TarEntryInput[]> {
  const out: TarEntryInput[] = [];
  let names: Deno.DirEntry[];
  try {
    names = [];
    for await (const e of Deno.readDir(join(root, rel))) names.push(e);
  } catch (err) {
    throw new UserError(
      `Cannot read skill directory "${join(root, rel)}": ${(err as Error).message}`,
    );
  }
  names.sort((a, b) => a.name.localeCompare(b.name));
  for (const e of names) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    const host = join(root, r);
    const info = await Deno.stat(host);
    if (info.isDirectory && !e.isSymlink) {
      out.push({ path: `${dest}/${r}`, type: "directory", mode: 0o755 });
      out.push(...await treeEntries(root, dest, r));
    } else if (info.isFile) {
      const mode = (info.mode ?? 0o644) & 0o111 ? 0o755 : 0o644;
      out.push({ path: `${dest}/${r}`, type: "file", mode, data: await Deno.readFile(host) });
    } else {
      throw new UserError(`Skill file "${host}" is neither a file nor a directory`);
    }
  }
  return out;
}

/** Keeps the first entry for each path (parent dirs repeat across steps). */
function dedupe(entries: TarEntryInput[]): TarEntryInput[] {
  const seen = new Set<string>();
  return entries.filter((e) => {
    const key = e.path.replace(/\/$/, "");
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
