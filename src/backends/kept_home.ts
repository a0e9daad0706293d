/**
 * The agent's home kept across bottles of one agent: Claude Code's settings,
 * onboarding state and history (`~/.claude.json`, `~/.claude/`), saved on
 * the host when a bottle stops and put back when the next one starts, so a
 * second `start` goes straight to work. Through the runtime's exec and
 * copy-in, so both backends keep it the same way. What comes out of a
 * bottle is the agent's: it is rebuilt here, files only, under the kept
 * paths, without Claude Code's credential file (the bottle only ever holds
 * placeholders, and none of them is kept) or its MCP registrations (each
 * bottle registers its own supervise, with its own address and token).
 */
import { dirname } from "node:path";
import type { AgentRuntime } from "./agent_runtime.ts";
import { readTarFiles, type TarEntryInput, writeTar } from "../archive/tar.ts";
import { makePrivateDir, writePrivateFile } from "../state/private_files.ts";

/** What is kept, relative to the agent's home. */
export const KEPT_PATHS = [".claude.json", ".claude"] as const;
/** Never kept: where Claude Code keeps a login of its own. */
const DROPPED = new Set([".claude/.credentials.json"]);
/** A kept home larger than this is not saved (history grows; the host's disk is not the agent's). */
export const MAX_KEPT_BYTES = 64 * 1024 * 1024;

/** The guest side of a save: the kept paths as a POSIX tar, base64 (exec output is text). */
const SAVE_SCRIPT = `cd "$HOME" || exit 1
set --
for p in ${KEPT_PATHS.join(" ")}; do [ -e "$p" ] && set -- "$@" "$p"; done
[ $# -eq 0 ] && exit 0
tar --format=posix -c -f - -- "$@" 2>/dev/null | base64 -w 0`;

/**
 * Saves the agent's kept paths from a running place to `hostFile`.
 * Returns what happened, in words, for the caller to say.
 */
export async function saveKeptHome(
  runtime: AgentRuntime,
  place: string,
  user: string,
  hostFile: string,
): Promise<string> {
  const r = await runtime.exec(place, ["sh", "-c", SAVE_SCRIPT], { user });
  const text = r.stdout.trim();
  if (text === "") return "nothing to keep";
  if (text.length > (MAX_KEPT_BYTES * 4) / 3 + 4) {
    return `not kept: larger than ${MAX_KEPT_BYTES >> 20} MiB`;
  }
  const tar = keptHomeTar(Uint8Array.from(atob(text), (c) => c.charCodeAt(0)));
  await makePrivateDir(dirname(hostFile));
  await writePrivateFile(hostFile, tar);
  return `kept in ${hostFile}`;
}

/** Puts a kept home back into a new place, as the agent user; false when there is none. */
export async function restoreKeptHome(
  runtime: AgentRuntime,
  place: string,
  user: string,
  home: string,
  hostFile: string,
): Promise<boolean> {
  let tar: Uint8Array;
  try {
    tar = await Deno.readFile(hostFile);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
  await runtime.copyIn(place, home, keptHomeTar(tar), user);
  return true;
}

/**
 * The kept home as it may go back into a bottle: regular files under the
 * kept paths only (no links, no devices, nothing outside them), no
 * credential file, `.claude.json` without its MCP servers. Pure.
 */
export function keptHomeTar(tar: Uint8Array): Uint8Array {
  const entries: TarEntryInput[] = [];
  const dirs = new Set<string>();
  const files = [...readTarFiles(tar)].sort(([a], [b]) => a.localeCompare(b));
  for (const [rawPath, data] of files) {
    const path = rawPath.replace(/\/+$/, "");
    const parts = path.split("/");
    if (path.startsWith("/") || parts.includes("..") || parts.includes("") || DROPPED.has(path)) {
      continue;
    }
    if (path !== ".claude.json" && parts[0] !== ".claude") continue;
    if (path === ".claude" || (parts[0] === ".claude.json" && parts.length > 1)) continue;
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join("/");
      if (!dirs.has(dir)) {
        dirs.add(dir);
        entries.push({ path: dir, type: "directory", mode: 0o700 });
      }
    }
    entries.push({
      path,
      type: "file",
      mode: 0o600,
      data: path === ".claude.json" ? withoutMcpServers(data) : data,
    });
  }
  return writeTar(entries);
}

function withoutMcpServers(data: Uint8Array): Uint8Array {
  try {
    const config = JSON.parse(new TextDecoder().decode(data));
    if (typeof config !== "object" || config === null || Array.isArray(config)) return data;
    delete config.mcpServers;
    return new TextEncoder().encode(JSON.stringify(config, null, 2) + "\n");
  } catch {
    // Not JSON: Claude Code will say so itself, as it would without bottle.
    return data;
  }
}
