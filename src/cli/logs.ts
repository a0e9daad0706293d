/**
 * `bottle logs <bottle>`: the bottle's audit log, one line per request the
 * agent made to the outside (written by egress in the bottle's state dir).
 */
import { pathExists } from "../state/path_exists.ts";
import type { Command } from "commander";
import { join } from "node:path";
import type { CliContext } from "./context.ts";
import { bottleDir } from "../state/bottle_record.ts";
import { AUDIT_LOG } from "../bundle/init/bundle_manifest.ts";
import { UserError } from "../errors.ts";
import { abortable, delay } from "../proc/abortable.ts";

const FOLLOW_POLL_MS = 250;

export function registerLogs(program: Command, ctx: CliContext): void {
  program.command("logs")
    .description("Show a bottle's audit log (one line per outside request)")
    .argument("<bottle>", "bottle name (see bottle ls)")
    .option("-f, --follow", "keep printing new lines until interrupted")
    .option("--json", "print the raw JSON lines")
    .action(async (bottle: string, opts: { follow?: boolean; json?: boolean }) => {
      const dir = bottleDir(ctx.dirs.state, bottle);
      const file = join(dir, "logs", AUDIT_LOG);
      if (!(await pathExists(dir))) {
        throw new UserError(`No bottle named "${bottle}" (see bottle ls)`);
      }
      const show = (line: string) => ctx.out(opts.json ? line : formatAuditLine(line));
      let offset = 0;
      let rest = "";
      for (;;) {
        const chunk = await readFrom(file, offset);
        offset += chunk.length;
        const lines = (rest + new TextDecoder().decode(chunk)).split("\n");
        rest = lines.pop() ?? "";
        for (const l of lines) if (l.trim()) show(l);
        if (!opts.follow) return;
        try {
          await abortable(delay(FOLLOW_POLL_MS, ctx.signal), ctx.signal);
        } catch {
          return; // Ctrl-C ends --follow quietly
        }
      }
    });
}

/** `12:00:01 GET api.anthropic.com/v1/messages 200 routed 1.2kB/3.4kB`. */
export function formatAuditLine(line: string): string {
  try {
    const e = JSON.parse(line) as Record<string, unknown>;
    const time = String(e.time ?? "").replace(/^.*T(\d\d:\d\d:\d\d).*$/, "$1");
    const target = `${e.host ?? "?"}${e.path ?? ""}`;
    const bytes = `${size(Number(e.bytes_up))} up, ${size(Number(e.bytes_down))} down`;
    const reason = e.reason ? ` (${e.reason})` : "";
    return `${time} ${e.method ?? "?"} ${target} ${e.status ?? "-"} ${
      e.decision ?? "?"
    }${reason} ${bytes}`;
  } catch {
    return line;
  }
}

function size(n: number): string {
  if (!Number.isFinite(n)) return "?";
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} kB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

async function readFrom(path: string, offset: number): Promise<Uint8Array> {
  let f: Deno.FsFile;
  try {
    f = await Deno.open(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return new Uint8Array();
    throw err;
  }
  try {
    await f.seek(offset, Deno.SeekMode.Start);
    return new Uint8Array(await new Response(f.readable).arrayBuffer());
  } catch (err) {
    f.close();
    throw err;
  }
}
