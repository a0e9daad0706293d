/**
 * Bottle names become paths (state dirs), container and VM names and label
 * values: every name bottle is given, on the command line or found on the
 * engine, passes through here first.
 */
import { UserError } from "../errors.ts";

const SUFFIX = /^[a-z0-9][a-z0-9-]{0,15}$/;
const NAME = /^[a-z][a-z0-9-]{0,30}-[a-z0-9][a-z0-9-]{0,15}$/;

/** `--name`: the part after the agent's name. */
export function checkSuffix(suffix: string): string {
  if (!SUFFIX.test(suffix)) {
    throw new UserError(
      `Invalid --name "${suffix}": expected up to 16 lowercase letters, digits or "-"`,
    );
  }
  return suffix;
}

/** A whole bottle name (`<agent>-<suffix>`), as `ls` shows it. */
export function isBottleName(name: string): boolean {
  return NAME.test(name);
}

export function checkBottleName(name: string): string {
  if (!isBottleName(name)) {
    throw new UserError(
      `Invalid bottle name "${name}": expected <agent>-<suffix> in lowercase letters, digits and "-" (see bottle ls)`,
    );
  }
  return name;
}
