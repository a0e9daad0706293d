/**
 * The agent's home kept across bottles of one agent in one project: Claude
 * Code's settings, onboarding state and history, saved on the host when a
 * bottle stops and put back when the next one starts, so a second `start`
 * goes straight to work. Through the runtime's exec and copy-in, so both
 * backends keep it the same way.
 *
 * What comes out of a bottle is the agent's, and a session that went wrong
 * must not reach into the next one: the kept home is rebuilt here from
 * data only. Kept: `.claude.json` without MCP servers or tool grants,
 * `.claude/settings.json` with only display and model preferences (no
 * permissions, hooks, env or helper commands), and the transcripts and
 * todo lists under `.claude/projects/` and `.claude/todos/`. Everything
 * else (Claude Code's login, shell snapshots it sources, commands, agents,
 * skills, plugins) is dropped. The bottle only ever holds placeholders, so
 * no real credential can be among what is kept.
 */
import { dirname } from "node:path";
import type { AgentRuntime } from "./agent_runtime.ts";
import { readTarFiles, type TarEntryInput, writeTar } from "../archive/tar.ts";
import { makePrivateDir, writePrivateFile } from "../state/private_files.ts";

/** What is read out of the bottle, relative to the agent's home (then filtered). */
export const KEPT_PATHS = [
  ".claude.json",
  ".claude/settings.json",
  ".claude/projects",
  ".claude/todos",
] as const;
/** A kept home larger than this is not saved (history grows; the host's disk is not the agent's). */
export const MAX_KEPT_BYTES = 64 * 1024 * 1024;
/** The settings that are preferences, not powers. */
const KEPT_SETTINGS = new Set([
  "theme",
  "model",
  "outputStyle",
  "verbose",
  "includeCoAuthoredBy",
  "cleanupPeriodDays",
  "alwaysThinkingEnabled",
  "spinnerTipsEnabled",
  "language",
]);
/** Per-project entries of `.claude.json` that grant or register something. */
const DROPPED_PROJECT_KEYS = [
  "mcpServers",
  "enabledMcpjsonServers",
  "disabledMcpjsonServers",
  "allowedTools",
  "mcpContextUris",
];

/**
 * The guest side of a save: the kept paths as a POSIX tar, cut one byte
 * past the limit (so an agent's sparse or endless file costs the host
 * nothing), base64 (exec output is text).
 */
const SAVE_SCRIPT = `cd "$HOME" || exit 1
set --
for p in ${KEPT_PATHS.join(" ")}; do [ -e "$p" ] && set -- "$@" "$p"; done
[ $# -eq 0 ] && exit 0
tar --format=posix -c -f - -- "$@" 2>/dev/null | head -c ${MAX_KEPT_BYTES + 1} | base64 -w 0`;

/**
 * Saves the agent's kept paths from a running place to `hostFile`.
 * Returns why it was not kept, for the caller to say; undefined once kept
 * (or when there was nothing to keep).
 */
export async function saveKeptHome(
  runtime: AgentRuntime,
  place: string,
  user: string,
  hostFile: string,
): Promise<string | undefined> {
  const r = await runtime.exec(place, ["sh", "-c", SAVE_SCRIPT], { user });
  const text = r.stdout.trim();
  if (text === "") return undefined;
  const raw = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  if (raw.length > MAX_KEPT_BYTES) return `it is larger than ${MAX_KEPT_BYTES >> 20} MiB`;
  const tar = keptHomeTar(raw);
  await makePrivateDir(dirname(hostFile));
  await writePrivateFile(hostFile, tar);
  return undefined;
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

/** Whether a path (relative to home) is one the kept home may hold. */
function kept(path: string): boolean {
  const parts = path.split("/");
  if (path.startsWith("/") || parts.includes("..") || parts.includes("") || parts.includes(".")) {
    return false;
  }
  if (path === ".claude.json" || path === ".claude/settings.json") return true;
  return parts.length >= 3 && parts[0] === ".claude" &&
    (parts[1] === "projects" || parts[1] === "todos");
}

/**
 * The kept home as it may go back into a bottle: regular files at the kept
 * paths only (no links, no devices, nothing outside them), the two JSON
 * files reduced to what is data. Pure.
 */
export function keptHomeTar(tar: Uint8Array): Uint8Array {
  const entries: TarEntryInput[] = [];
  const dirs = new Set<string>();
  const files = [...readTarFiles(tar)].sort(([a], [b]) => a.localeCompare(b));
  for (const [rawPath, data] of files) {
    const path = rawPath.replace(/\/+$/, "");
    if (!kept(path)) continue;
    const parts = path.split("/");
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join("/");
      if (!dirs.has(dir)) {
        dirs.add(dir);
        entries.push({ path: dir, type: "directory", mode: 0o700 });
      }
    }
    const content = path === ".claude.json"
      ? editJson(data, withoutGrants)
      : path === ".claude/settings.json"
      ? editJson(data, preferencesOnly)
      : data;
    if (content === undefined) continue;
    entries.push({ path, type: "file", mode: 0o600, data: content });
  }
  return writeTar(entries);
}

type Json = Record<string, unknown>;

/** The JSON object edited; undefined (dropped) when it is not one. */
function editJson(data: Uint8Array, edit: (o: Json) => Json): Uint8Array | undefined {
  try {
    const o = JSON.parse(new TextDecoder().decode(data));
    if (typeof o !== "object" || o === null || Array.isArray(o)) return undefined;
    return new TextEncoder().encode(JSON.stringify(edit(o), null, 2) + "\n");
  } catch {
    return undefined;
  }
}

function withoutGrants(config: Json): Json {
  const { mcpServers: _, ...rest } = config;
  const projects = rest.projects;
  if (typeof projects === "object" && projects !== null && !Array.isArray(projects)) {
    rest.projects = Object.fromEntries(
      Object.entries(projects as Record<string, unknown>).map(([k, v]) => {
        if (typeof v !== "object" || v === null || Array.isArray(v)) return [k, {}];
        const p = { ...(v as Json) };
        for (const key of DROPPED_PROJECT_KEYS) delete p[key];
        return [k, p];
      }),
    );
  }
  return rest;
}

function preferencesOnly(settings: Json): Json {
  return Object.fromEntries(Object.entries(settings).filter(([k]) => KEPT_SETTINGS.has(k)));
}
