/**
 * Reads and validates one agent file. Every problem comes back located
 * (file, line, column, field path) in a single ConfigError.
 */
import { LineCounter, parseDocument } from "yaml";
import type { z } from "zod";
import { type AgentFile, agentFile } from "./schema.ts";
import { ConfigError, formatPath, type Position } from "./config_error.ts";
import { positionOf } from "./yaml_positions.ts";
import { issueMessage, knownKeysAt, unknownKeyMessage } from "./issue_message.ts";

/** Parses and validates agent-file text; `file` is only used in messages. */
export function parseAgentFile(text: string, file: string): AgentFile {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      file,
      doc.errors.map((e) => {
        const { line, col } = lines.linePos(e.pos[0]);
        return {
          path: "",
          message: `invalid YAML: ${firstLine(e.message)}`,
          position: { line, col },
        };
      }),
    );
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 }) ?? null;
  } catch (err) {
    // Aliases that would expand beyond reason (a "billion laughs" file).
    throw new ConfigError(file, [{
      path: "",
      message: `invalid YAML: ${firstLine((err as Error).message)}`,
      position: { line: 1, col: 1 },
    }]);
  }
  const result = agentFile.safeParse(data, { reportInput: true });
  if (result.success) return result.data;

  const problems: { position?: Position; path: string; message: string }[] = [];
  for (const issue of flattenIssues(result.error.issues)) {
    if (issue.code === "unrecognized_keys") {
      const known = knownKeysAt(agentFile, issue.path);
      for (const key of issue.keys) {
        const position = positionOf(doc, lines, issue.path, key);
        const p = {
          path: formatPath([...issue.path, key]),
          message: unknownKeyMessage(key, known),
        };
        problems.push(position ? { ...p, position } : p);
      }
      continue;
    }
    // A bad mapping key (an agent's name) is reported at the key, not its value.
    const position = issue.code === "invalid_key"
      ? positionOf(doc, lines, issue.path.slice(0, -1), String(issue.path.at(-1)))
      : positionOf(doc, lines, issue.path);
    const p = { path: formatPath(issue.path), message: issueMessage(issue) };
    problems.push(position ? { ...p, position } : p);
  }
  problems.sort((a, b) =>
    (a.position?.line ?? 0) - (b.position?.line ?? 0) ||
    (a.position?.col ?? 0) - (b.position?.col ?? 0)
  );
  throw new ConfigError(file, problems);
}

/**
 * A union whose every branch failed only because of unknown keys in the
 * object branch is better reported as those unknown keys.
 */
function flattenIssues(issues: z.core.$ZodIssue[]): z.core.$ZodIssue[] {
  return issues.flatMap((issue) => {
    if (issue.code !== "invalid_union") return [issue];
    const objectBranch = issue.errors.find((branch) =>
      branch.length > 0 &&
      branch.every((i) => i.code !== "invalid_type" && i.code !== "invalid_value")
    );
    if (!objectBranch) return [issue];
    return objectBranch.map((i) => ({ ...i, path: [...issue.path, ...i.path] }));
  });
}

/** Reads an agent file from disk; an unreadable file is a ConfigError too. */
export async function loadAgentFile(path: string): Promise<AgentFile> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (err) {
    const why = err instanceof Deno.errors.NotFound ? "no such file" : (err as Error).message;
    throw new ConfigError(path, [{ path: "", message: `cannot read agent file: ${why}` }]);
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    const at = firstInvalidUtf8(bytes);
    throw new ConfigError(path, [{
      path: "",
      message: "the file is not UTF-8 text",
      position: at,
    }]);
  }
  return parseAgentFile(text, path);
}

function firstLine(s: string): string {
  return s.split("\n")[0]!.trim();
}

/** Where the first byte that is not valid UTF-8 is, as line and column. */
function firstInvalidUtf8(bytes: Uint8Array): Position {
  const dec = new TextDecoder("utf-8", { fatal: true });
  let lo = 0;
  let hi = bytes.length;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    try {
      dec.decode(bytes.subarray(0, mid));
      lo = mid;
    } catch {
      hi = mid - 1;
    }
  }
  // `lo` bytes decode; a prefix may end inside a valid sequence, so step back to a boundary.
  const before = new TextDecoder().decode(bytes.subarray(0, lo));
  const lines = before.split("\n");
  return { line: lines.length, col: (lines.at(-1)?.length ?? 0) + 1 };
}
