/**
 * Turns zod issues into the sentences users read: what was expected, what was
 * found, and for misspelt keys the key they probably meant.
 */
import type { z } from "zod";
import { closest } from "./suggest.ts";

/** The known keys of the object schema at `path`, for "did you mean" hints. */
export function knownKeysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  let s: z.ZodType | undefined = schema;
  for (const seg of path) {
    s = s && childSchema(unwrap(s), seg);
    if (!s) return [];
  }
  const obj = s && unwrap(s);
  const def = obj?._zod.def as {
    type: string;
    shape?: Record<string, unknown>;
    options?: z.ZodType[];
  };
  if (def?.type === "object" && def.shape) return Object.keys(def.shape);
  if (def?.type === "union" && def.options) {
    return def.options.flatMap((o) => knownKeysAt(o, []));
  }
  return [];
}

function unwrap(s: z.ZodType): z.ZodType {
  let cur = s;
  for (;;) {
    const def = cur._zod.def as { type: string; innerType?: z.ZodType; in?: z.ZodType };
    if (
      def.innerType &&
      ["optional", "default", "nullable", "prefault", "readonly"].includes(def.type)
    ) {
      cur = def.innerType;
    } else if (def.type === "pipe" && def.in) cur = def.in;
    else return cur;
  }
}

function childSchema(s: z.ZodType, seg: PropertyKey): z.ZodType | undefined {
  const def = s._zod.def as {
    type: string;
    shape?: Record<string, z.ZodType>;
    element?: z.ZodType;
    valueType?: z.ZodType;
    options?: z.ZodType[];
  };
  switch (def.type) {
    case "object":
      return def.shape?.[String(seg)];
    case "array":
      return def.element;
    case "record":
      return def.valueType;
    case "union":
      for (const o of def.options ?? []) {
        const c = childSchema(unwrap(o), seg);
        if (c) return c;
      }
      return undefined;
    default:
      return undefined;
  }
}

/** One readable sentence for one issue (unknown keys are handled by the caller). */
export function issueMessage(issue: z.core.$ZodIssue): string {
  const input = (issue as { input?: unknown }).input;
  switch (issue.code) {
    case "invalid_type":
      return input === undefined
        ? `missing required field (expected ${typeName(issue.expected)})`
        : `expected ${typeName(issue.expected)}, got ${describe(input)}`;
    case "invalid_value":
      if (input === undefined) {
        return `missing required field (expected ${
          issue.values.map((v) => JSON.stringify(v)).join(" or ")
        })`;
      }
      return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}, got ${
        describe(input)
      }`;
    case "too_small":
      return issue.origin === "array"
        ? `expected at least ${issue.minimum} item(s)`
        : issue.origin === "string"
        ? `expected a non-empty string`
        : `expected a value ${issue.inclusive ? ">=" : ">"} ${issue.minimum}, got ${
          describe(input)
        }`;
    case "too_big":
      return `expected a value ${issue.inclusive ? "<=" : "<"} ${issue.maximum}, got ${
        describe(input)
      }`;
    case "invalid_union":
      return `expected ${unionExpectation(issue)}, got ${describe(input)}`;
    case "invalid_key":
      return issue.issues[0] ? issueMessage(issue.issues[0]) : issue.message;
    default:
      return issue.message;
  }
}

/** Message for unknown keys, with a suggestion when one is close. */
export function unknownKeyMessage(key: string, known: readonly string[]): string {
  const guess = closest(key, known);
  const hint = guess
    ? `; did you mean "${guess}"?`
    : known.length
    ? ` (known: ${known.join(", ")})`
    : "";
  return `unknown field "${key}"${hint}`;
}

function unionExpectation(issue: z.core.$ZodIssueInvalidUnion): string {
  const parts = issue.errors.flat().map((i) =>
    i.code === "invalid_value"
      ? i.values.map((v) => JSON.stringify(v)).join(" or ")
      : i.code === "invalid_type"
      ? typeName(i.expected)
      : undefined
  ).filter((x): x is string => x !== undefined);
  return [...new Set(parts)].join(" or ") || "a valid value";
}

/** zod's type names in the words of YAML. */
function typeName(t: string): string {
  return t === "object" ? "a mapping" : t === "array" ? "a list" : t;
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  if (typeof v === "string") return JSON.stringify(v);
  return `${typeof v} ${String(v)}`;
}
