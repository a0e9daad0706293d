/**
 * `bottle logs <bottle>`: the bottle's audit log, one line per request the
 * agent made to the outside. It lives in the bundle and is read through the
 * engine (which need not share this host's filesystem); once the bundle is
 * gone, the copy `stop` kept on the host is shown.
 */
import type { Command } from "commander";
import type { CliContext } from "./context.ts";
import { bottleDir, keptAuditLog, readRecord } from "../state/bottle_record.ts";
import { checkBottleName } from "../state/bottle_name.ts";
import { UserError } from "../errors.ts";
import { enginesOf } from "./backends.ts";
import { jsonTerminalSafe, terminalSafe } from "../text/terminal_safe.ts";
import { AUDIT_LOG_IN_BUNDLE } from "../bundle/init/bundle_manifest.ts";

export function registerLogs(program: Command, ctx: CliContext): void {
  program.command("logs")
    .description("Show a bottle's audit log (one line per outside request)")
    .argument("<bottle>", "bottle name (see bottle ls)")
    .option("-f, --follow", "keep printing new lines until interrupted")
    .option("--json", "print the raw JSON lines")
    .action(async (bottle: string, opts: { follow?: boolean; json?: boolean }) => {
      checkBottleName(bottle);
      let shown = 0;
      const show = (line: string) => {
        if (!line.trim()) return;
        shown++;
        ctx.out(opts.json ? jsonTerminalSafe(line) : formatAuditLine(line));
      };
      // Nothing printed is not nothing said (on stderr: --json output stays empty JSON lines).
      const empty = () => {
        if (shown === 0) {
          ctx.err(`bottle: the audit log of ${bottle} is empty: nothing has left it yet`);
        }
      };
      const record = await readRecord(bottleDir(ctx.dirs.state, bottle));
      if (record) {
        const { docker } = await enginesOf(ctx);
        const running = await docker.run(
          ["inspect", "--format", "{{.State.Running}}", record.bundleContainer],
          { check: false },
        );
        if (running.stdout.trim() === "true") {
          if (opts.follow) return await follow(ctx, record.bundleContainer, show);
          const { readAuditLog } = await import("../backends/bundle/bundle_container.ts");
          const text = new TextDecoder().decode(
            await readAuditLog(docker, record.bundleContainer),
          );
          for (const l of text.split("\n")) show(l);
          return empty();
        }
      }
      let kept: string;
      try {
        kept = await Deno.readTextFile(keptAuditLog(ctx.dirs.state, bottle));
      } catch (err) {
        if (!(err instanceof Deno.errors.NotFound)) throw err;
        if (!record) throw new UserError(`No bottle named "${bottle}" (see bottle ls)`);
        return empty();
      }
      for (const l of kept.split("\n")) show(l);
      empty();
    });
}

/** Streams the log from the running bundle until Ctrl-C or the bundle ends. */
async function follow(
  ctx: CliContext,
  bundle: string,
  show: (line: string) => void,
): Promise<void> {
  const { docker } = await enginesOf(ctx);
  const child = docker.spawn(
    ["exec", bundle, "tail", "-n", "+1", "-F", AUDIT_LOG_IN_BUNDLE],
    { stderr: "null", signal: ctx.signal },
  );
  let rest = "";
  for await (const chunk of child.process.stdout.pipeThrough(new TextDecoderStream())) {
    const lines = (rest + chunk).split("\n");
    rest = lines.pop() ?? "";
    lines.forEach(show);
  }
  await child.status; // Ctrl-C ends --follow quietly
}

/** `12:00:01 GET api.anthropic.com/v1/messages 200 routed 1.2 kB up, 3.4 kB down`. */
export function formatAuditLine(line: string): string {
  try {
    const e = JSON.parse(line) as Record<string, unknown>;
    const time = String(e.time ?? "").replace(/^.*T(\d\d:\d\d:\d\d).*$/, "$1");
    if (e.daemon === "git-gate") return terminalSafe(`${time} ${pushLine(e)}`);
    if (e.daemon === "supervise") return terminalSafe(`${time} ${superviseLine(e)}`);
    const target = `${e.host ?? "?"}${e.path ?? ""}`;
    const bytes = `${size(Number(e.bytes_up))} up, ${size(Number(e.bytes_down))} down`;
    const reason = e.reason ? ` (${e.reason})` : "";
    return terminalSafe(
      `${time} ${e.method ?? "?"} ${target} ${e.status ?? "-"} ${
        e.decision ?? "?"
      }${reason} ${bytes}`,
    );
  } catch {
    return terminalSafe(line);
  }
}

/** `PUSH workspace refs/heads/x 1a2b3c4d..5e6f7a8b rejected ([secret] …)`. */
function pushLine(e: Record<string, unknown>): string {
  const refs = Array.isArray(e.refs) ? e.refs as Record<string, unknown>[] : [];
  const short = (o: unknown) => String(o ?? "?").slice(0, 8);
  const what = refs.map((r) => `${r.ref} ${short(r.old)}..${short(r.new)}`).join(", ");
  return `PUSH ${e.upstream ?? "?"} ${what || "-"} ${e.decision ?? "?"}${
    e.reason ? ` (${e.reason})` : ""
  }`;
}

/**
 * `ASK 4fc4b69a request_approval: deploy to prod` when a request arrives,
 * `ANSWER 4fc4b69a approve by ann@host: go ahead` (or `TIMED-OUT`,
 * `ABANDONED` with the reason) when it ends.
 */
function superviseLine(e: Record<string, unknown>): string {
  const id = `${e.id ?? "?"} ${e.tool ?? "?"}`;
  if (e.event === "request") return `ASK ${id}: ${e.text ?? ""}`;
  if (e.event === "answered") {
    const said = e.answer !== undefined ? e.answer : e.message;
    return `ANSWER ${id} ${e.decision ?? "?"} by ${e.by ?? "?"}${
      said !== undefined ? `: ${said}` : ""
    }`;
  }
  return `${String(e.event ?? "?").toUpperCase()} ${id}${e.reason ? ` (${e.reason})` : ""}`;
}

function size(n: number): string {
  if (!Number.isFinite(n)) return "?";
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} kB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}
