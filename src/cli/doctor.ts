/**
 * `bottle doctor`: is this host ready to run bottles? Each check says what it
 * found, and each failure says how to fix it. Exits 1 when a required check
 * fails.
 */
import { pathExists } from "../state/path_exists.ts";
import type { Command } from "commander";
import { run } from "../proc/runner.ts";
import { SilentExit, UserError } from "../errors.ts";
import type { CliContext } from "./context.ts";
import { MIN_SMOLVM_VERSION, SmolvmCli } from "../backends/smolvm/smolvm_cli.ts";

export interface Check {
  name: string;
  ok: boolean;
  required: boolean;
  detail: string;
  fix?: string;
}

const MIN_FREE_GB = 5;

export async function runChecks(ctx: CliContext): Promise<Check[]> {
  const docker = ctx.env.BOTTLE_DOCKER ?? "docker";
  const smolvm = ctx.env.SMOLVM ?? "smolvm";
  const checks: Check[] = [];

  const client = await tryRun([docker, "version", "--format", "{{.Client.Version}}"]);
  checks.push(
    client.ran
      ? {
        name: "docker client",
        ok: true,
        required: true,
        detail: client.stdout.split("\n")[0] ?? "",
      }
      : {
        name: "docker client",
        ok: false,
        required: true,
        detail: client.error,
        fix:
          "install Docker (docker.io on Debian/Ubuntu, Docker Desktop, OrbStack or Colima on macOS)",
      },
  );
  const engine = await tryRun([docker, "version", "--format", "{{.Server.Version}}"]);
  checks.push(
    engine.ran && engine.code === 0
      ? { name: "docker engine", ok: true, required: true, detail: engine.stdout.trim() }
      : {
        name: "docker engine",
        ok: false,
        required: true,
        detail: engine.ran ? lastLine(engine.stderr) : engine.error,
        fix:
          "start the Docker engine (`sudo systemctl start docker`, or open Docker Desktop) and check you may use its socket",
      },
  );

  checks.push(await smolvmCheck(new SmolvmCli({ binary: smolvm })));

  for (
    const [what, dir] of [["state dir", ctx.dirs.state], ["cache dir", ctx.dirs.cache]] as const
  ) {
    const free = await freeGb(dir);
    checks.push(
      free === undefined
        ? {
          name: `disk (${what})`,
          ok: false,
          required: false,
          detail: `cannot measure free space at "${dir}"`,
        }
        : {
          name: `disk (${what})`,
          ok: free >= MIN_FREE_GB,
          required: true,
          detail: `${free.toFixed(1)} GB free at "${dir}"`,
          ...(free >= MIN_FREE_GB
            ? {}
            : { fix: `free at least ${MIN_FREE_GB} GB (images and VM artifacts live here)` }),
        },
    );
  }
  return checks;
}

export function registerDoctor(program: Command, ctx: CliContext): void {
  program.command("doctor")
    .description("Check that docker, smolvm and disk space are ready")
    .option("--json", "print the checks as JSON")
    .action(async (opts: { json?: boolean }) => {
      const checks = await runChecks(ctx);
      if (opts.json) ctx.out(JSON.stringify(checks, null, 2));
      else {
        for (const c of checks) {
          const mark = c.ok ? "ok  " : c.required ? "FAIL" : "warn";
          ctx.out(`${mark}  ${c.name}: ${c.detail}${c.fix ? `\n      fix: ${c.fix}` : ""}`);
        }
      }
      if (checks.some((c) => c.required && !c.ok)) throw new SilentExit(1);
    });
}

/** smolvm is optional: only `--backend smolmachines` needs it. */
async function smolvmCheck(cli: SmolvmCli): Promise<Check> {
  const name = "smolvm";
  try {
    const v = await cli.assertSupported({ timeoutMs: 15_000 });
    return { name, ok: true, required: false, detail: v.text };
  } catch (err) {
    const missing = err instanceof UserError && /^Cannot run smolvm/.test(err.message);
    return {
      name,
      ok: false,
      required: false,
      detail: missing
        ? "not installed (only needed for --backend smolmachines)"
        : (err as Error).message,
      fix:
        `install smolvm >= ${MIN_SMOLVM_VERSION} (older versions do not enforce the egress policy)`,
    };
  }
}

async function tryRun(argv: string[]): Promise<
  { ran: true; code: number; stdout: string; stderr: string } | { ran: false; error: string }
> {
  try {
    const r = await run(argv, { check: false, timeoutMs: 15_000 });
    return { ran: true, code: r.code, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    return { ran: false, error: (err as Error).message };
  }
}

/** Free space of the nearest existing ancestor of `dir`, in GB. */
async function freeGb(dir: string): Promise<number | undefined> {
  let d = dir;
  while (d !== "/" && !(await pathExists(d))) d = d.replace(/\/[^/]+\/?$/, "") || "/";
  const r = await tryRun(["df", "-Pk", d]);
  if (!r.ran || r.code !== 0) return undefined;
  const kb = Number(r.stdout.trim().split("\n")[1]?.split(/\s+/)[3]);
  return Number.isFinite(kb) ? kb / 1024 / 1024 : undefined;
}

function lastLine(s: string): string {
  return s.trim().split("\n").at(-1) ?? "";
}
