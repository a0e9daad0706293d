/**
 * The host-side record of a running bottle (`<state>/bottles/<name>/bottle.json`).
 * The engine's labels say what exists; this says what the launching process
 * meant: a detached bottle is kept, an unfinished one is an orphan.
 */
import { join } from "node:path";
import { writePrivateFile } from "./private_files.ts";
import type { Backend } from "../plan/plan_types.ts";

export interface BottleRecord {
  name: string;
  agent: string;
  backend: Backend;
  createdAt: string;
  ownerPid: number;
  /** launching: still starting (or its launcher died); running: up and kept. */
  status: "launching" | "running";
  detached: boolean;
  agentContainer?: string;
  /** argv that starts the agent program inside the bottle (for attach). */
  agentCommand?: string[];
  bundleContainer?: string;
  machine?: string;
}

export const RECORD_FILE = "bottle.json";

export function bottleDir(stateRoot: string, name: string): string {
  return join(stateRoot, "bottles", name);
}

export async function writeRecord(dir: string, record: BottleRecord): Promise<void> {
  await writePrivateFile(join(dir, RECORD_FILE), JSON.stringify(record, null, 2) + "\n");
}

export async function readRecord(dir: string): Promise<BottleRecord | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(join(dir, RECORD_FILE))) as BottleRecord;
  } catch {
    return undefined;
  }
}
