/**
 * What the host sends the bundle's init on stdin as the container starts:
 * one header line (`bottle-start-input/1 <bytes>`) and a tar archive of that
 * many bytes holding the config files and, as the reserved entry
 * `secrets.json`, the route secrets. The length is explicit because the
 * container's stdin stays open after it: init reads exactly what was sent.
 */
import { readTarFiles, writeTar } from "../../archive/tar.ts";

export const START_INPUT_MAGIC = "bottle-start-input/1";
const SECRETS_ENTRY = "secrets.json";
const MAX_INPUT = 16 * 1024 * 1024;

export interface StartInput {
  files: Map<string, Uint8Array>;
  secrets: Record<string, string>;
}

export function encodeStartInput(
  files: ReadonlyMap<string, string | Uint8Array>,
  secrets: Record<string, string>,
): Uint8Array {
  if (files.has(SECRETS_ENTRY)) throw new Error(`"${SECRETS_ENTRY}" is reserved for secrets`);
  const tar = writeTar([
    ...[...files].map(([name, data]) => ({ path: name, type: "file" as const, mode: 0o400, data })),
    { path: SECRETS_ENTRY, type: "file", mode: 0o400, data: JSON.stringify(secrets) },
  ]);
  const head = new TextEncoder().encode(`${START_INPUT_MAGIC} ${tar.length}\n`);
  const out = new Uint8Array(head.length + tar.length);
  out.set(head);
  out.set(tar, head.length);
  return out;
}

/** Reads one start input from `stream`, and nothing after it. */
export async function readStartInput(stream: ReadableStream<Uint8Array>): Promise<StartInput> {
  const reader = stream.getReader();
  let buf = new Uint8Array(0);
  const more = async () => {
    const { value, done } = await reader.read();
    if (done) throw new Error("The start input ended early");
    const next = new Uint8Array(buf.length + value.length);
    next.set(buf);
    next.set(value, buf.length);
    buf = next;
  };
  try {
    let nl: number;
    while ((nl = buf.indexOf(10)) < 0) {
      if (buf.length > 128) throw new Error("The start input has no header line");
      await more();
    }
    const head = new TextDecoder().decode(buf.subarray(0, nl));
    const m = new RegExp(`^${START_INPUT_MAGIC.replace("/", "\\/")} (\\d+)$`).exec(head);
    if (!m) throw new Error(`Not a start input header: ${JSON.stringify(head.slice(0, 64))}`);
    const size = Number(m[1]);
    if (size > MAX_INPUT) throw new Error(`The start input is too large (${size} bytes)`);
    while (buf.length < nl + 1 + size) await more();
    const files = readTarFiles(buf.subarray(nl + 1, nl + 1 + size));
    const raw = files.get(SECRETS_ENTRY);
    files.delete(SECRETS_ENTRY);
    const secrets = raw ? JSON.parse(new TextDecoder().decode(raw)) as Record<string, string> : {};
    for (const [k, v] of Object.entries(secrets)) {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k) || typeof v !== "string") {
        throw new Error(`Bad secret entry "${k}" in the start input`);
      }
    }
    return { files, secrets };
  } finally {
    reader.releaseLock();
  }
}
