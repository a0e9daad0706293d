/**
 * The host-side record of a bottle (`<state>/bottles/<name>/bottle.json`).
 * The engine's labels say what exists; this says what the launching process
 * meant (a detached bottle is kept, an unfinished one is an orphan) and
 * names every object the plan made, so `stop`, `exec` and `logs` act on a
 * bottle without searching the engine for it.
 */
import { join } from "node:path";
import { writePrivateFile } from "./private_files.ts";
import type { Backend } from "../plan/plan_types.ts";
import { checkBottleName } from "./bottle_name.ts";

export interface BottleRecord {
  name: string;
  agent: string;
  backend: Backend;
  createdAt: string;
  ownerHost: string;
  ownerPid: number;
  /** launching: still starting (or its launcher died); running: up and kept. */
  status: "launching" | "running";
  detached: boolean;
  /** The agent's place: its container (docker) or VM (smolmachines). */
  place: string;
  /** The user agent commands run as, and where. */
  user: string;
  workdir: string;
  /** argv that starts the agent program inside the bottle (for attach). */
  program: string[];
  bundleContainer: string;
  networks: string[];
  volumes: string[];
  /**
   * workspace: git: the host repository and the prefix its pushes land
   * under; `copy`: on an engine that does not see this host's files, the
   * volume they land in first and the image that reads it (`bottle fetch`).
   */
  landing?: {
    repo: string;
    prefix: string;
    /** mount: the bottle's own object store, borrowed by the repository until imported. */
    store?: string;
    copy?: { volume: string; image?: string };
  };
  /** Where the agent's home is kept when the bottle stops (Claude Code's settings and history). */
  keptHome?: string;
  /** smolmachines with sockets: the dir of the host relay serving the VM's sockets. */
  relayDir?: string;
  /** Where its supervise requests wait: a host dir, or the bundle (read through the engine). */
  supervise?: { transport: "mount"; hostDir: string } | { transport: "bundle" };
}

export const RECORD_FILE = "bottle.json";

export function bottleDir(stateRoot: string, name: string): string {
  return join(stateRoot, "bottles", checkBottleName(name));
}

/** Where a bottle's audit log is kept once its bundle is gone (kept after `stop`). */
export function keptAuditLog(stateRoot: string, name: string): string {
  return join(stateRoot, "logs", checkBottleName(name), "audit.jsonl");
}

export async function writeRecord(dir: string, record: BottleRecord): Promise<void> {
  await writePrivateFile(join(dir, RECORD_FILE), JSON.stringify(record, null, 2) + "\n");
}

export async function readRecord(dir: string): Promise<BottleRecord | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(join(dir, RECORD_FILE));
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
  try {
    const r = JSON.parse(text) as Partial<BottleRecord>;
    // A record from an older bottle version lacks the object names: treat as absent.
    return typeof r.place === "string" && Array.isArray(r.networks) ? r as BottleRecord : undefined;
  } catch {
    return undefined;
  }
}
