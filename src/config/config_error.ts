import { UserError } from "../errors.ts";

/** Where in an agent file a problem is: 1-based line and column. */
export interface Position {
  line: number;
  col: number;
}

/**
 * A problem in an agent file, located: `file:line:col: field.path: message`.
 * Several problems are reported together so a user fixes them in one pass.
 */
export class ConfigError extends UserError {
  override name = "ConfigError";
  constructor(
    readonly file: string,
    readonly problems: { position?: Position; path: string; message: string }[],
  ) {
    super(problems.map((p) => formatProblem(file, p)).join("\n"));
  }
}

function formatProblem(
  file: string,
  p: { position?: Position; path: string; message: string },
): string {
  const where = p.position ? `${file}:${p.position.line}:${p.position.col}` : file;
  return p.path ? `${where}: ${p.path}: ${p.message}` : `${where}: ${p.message}`;
}

/** Renders a zod/yaml path the way users write it: `agents.x.routes[0].host`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else out += out ? `.${String(seg)}` : String(seg);
  }
  return out;
}
