/**
 * Typed failures of the `smolvm` CLI that callers branch on. smolvm reports
 * every failure the same way (`Error: …` on stderr, exit 1), so the only way
 * to tell "this machine already exists" from "the VM failed to boot" is the
 * message. The wrapper turns the three messages the launch and teardown flows
 * care about into these classes; everything else stays a plain
 * `CommandError`. All of them are `CommandError`s, so they still carry the
 * argv, exit code and stderr tail.
 */
import { CommandError } from "../../proc/runner.ts";

/** A smolvm failure about one named machine. */
export class SmolvmMachineError extends CommandError {
  override name = "SmolvmMachineError";
  constructor(
    readonly machine: string,
    argv: string[],
    code: number,
    stderr: string,
  ) {
    super(argv, code, stderr, false);
  }
}

/** `machine create` with a name that is taken. */
export class MachineExistsError extends SmolvmMachineError {
  override name = "MachineExistsError";
}

/** Any call naming a machine smolvm does not know. */
export class MachineNotFoundError extends SmolvmMachineError {
  override name = "MachineNotFoundError";
}

/** exec/cp (or anything else that needs a live VM) against a stopped machine. */
export class MachineNotRunningError extends SmolvmMachineError {
  override name = "MachineNotRunningError";
}

type MachineErrorClass =
  | typeof MachineExistsError
  | typeof MachineNotFoundError
  | typeof MachineNotRunningError;

/**
 * Picks the typed error for smolvm's stderr, or undefined when it is not one
 * of the known machine errors. Only `Error:` lines that mention the machine's
 * name count, so that e.g. `Error: … file not found: /x.smolmachine` from
 * `--from` or a guest command's own output is not mistaken for a missing
 * machine.
 */
export function machineErrorClass(
  stderr: string,
  machine: string,
): MachineErrorClass | undefined {
  for (const raw of stderr.split("\n")) {
    const line = raw.trim();
    if (!/^Error:/i.test(line) || !line.includes(machine)) continue;
    const lower = line.toLowerCase();
    if (lower.includes("already exists")) return MachineExistsError;
    if (lower.includes("not running")) return MachineNotRunningError;
    if (lower.includes("file not found")) continue;
    if (lower.includes("not found") || lower.includes("does not exist")) {
      return MachineNotFoundError;
    }
  }
  return undefined;
}

/** Rethrows `err` as a typed machine error when smolvm's message says so. */
export function toMachineError(err: unknown, machine: string): unknown {
  if (!(err instanceof CommandError) || err instanceof SmolvmMachineError) return err;
  const cls = machineErrorClass(err.stderrTail, machine);
  if (!cls) return err;
  const typed = new cls(machine, err.argv, err.code, err.stderrTail);
  typed.cause = err;
  return typed;
}
