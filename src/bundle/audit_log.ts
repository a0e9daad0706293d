/**
 * The audit trail: one JSON line per request the agent made (egress) and
 * per push (the git gate), appended to a file only the bundle user can read. Written synchronously so that lines
 * keep their order and none is lost when the daemon exits on SIGTERM, and
 * passed through `redact` so a registered secret can never land in it.
 */
import { redact } from "../proc/secrets.ts";

/**
 * routed: a credential route; tunneled: TLS passed through untouched;
 * forwarded: plain http passed on; denied: the bottle's policy refused it
 * (egress's allowlist, or pipelock's 4xx); error: the upstream or the
 * connection failed (pipelock's 5xx included).
 */
export type Decision = "routed" | "tunneled" | "forwarded" | "denied" | "error";

export interface AuditEntry {
  method: string;
  host: string;
  /** Only for routed requests (egress sees the path only there). No query string. */
  path?: string;
  status: number;
  bytes_up: number;
  bytes_down: number;
  decision: Decision;
  reason: string;
}

export class AuditLog {
  readonly #file: Deno.FsFile;
  readonly #bottle: string;
  readonly #encoder = new TextEncoder();

  private constructor(file: Deno.FsFile, bottle: string) {
    this.#file = file;
    this.#bottle = bottle;
  }

  static async open(path: string, bottle: string): Promise<AuditLog> {
    let file: Deno.FsFile;
    try {
      file = await Deno.open(path, { append: true, create: true, mode: 0o600 });
      // `mode` applies only on creation: tighten a file that already existed.
      await Deno.chmod(path, 0o600);
    } catch (err) {
      throw new Error(`Cannot open audit log "${path}": ${(err as Error).message}`);
    }
    return new AuditLog(file, bottle);
  }

  write(entry: AuditEntry): void {
    const line = JSON.stringify({
      time: new Date().toISOString(),
      bottle: this.#bottle,
      method: entry.method,
      host: entry.host,
      ...(entry.path !== undefined ? { path: entry.path } : {}),
      status: entry.status,
      bytes_up: entry.bytes_up,
      bytes_down: entry.bytes_down,
      decision: entry.decision,
      reason: entry.reason,
    });
    const bytes = this.#encoder.encode(redact(line) + "\n");
    let off = 0;
    while (off < bytes.length) off += this.#file.writeSync(bytes.subarray(off));
  }

  /** A line of another daemon's own shape (it names itself in `daemon`). */
  writeEvent(daemon: string, fields: Record<string, unknown>): void {
    const line = JSON.stringify({
      time: new Date().toISOString(),
      bottle: this.#bottle,
      daemon,
      ...fields,
    });
    const bytes = this.#encoder.encode(redact(line) + "\n");
    let off = 0;
    while (off < bytes.length) off += this.#file.writeSync(bytes.subarray(off));
  }

  close(): void {
    try {
      this.#file.close();
    } catch {
      // Already closed.
    }
  }
}
