/**
 * Maps a field path (as zod reports it) back to a line and column in the YAML
 * source, so that every config error can point at the exact spot.
 */
import { type Document, isMap, isPair, isScalar, isSeq, type LineCounter, type Node } from "yaml";
import type { Position } from "./config_error.ts";

/**
 * Finds the node at `path`, falling back to the deepest node that exists
 * (a missing field is reported at its parent). With `key`, points at that
 * key inside the map at `path` (for unknown keys).
 */
export function positionOf(
  doc: Document,
  lines: LineCounter,
  path: readonly PropertyKey[],
  key?: string,
): Position | undefined {
  let node: unknown = doc.contents;
  let offset = rangeStart(node);
  for (const seg of path) {
    const next = child(node, seg);
    if (next === undefined) break;
    // Point at the key for a map entry, so "routes[0].host" lands on "host:"
    // when the value itself has no usable range (null values).
    offset = rangeStart(next.value) ?? next.keyOffset ?? offset;
    node = next.value;
  }
  if (key !== undefined && isMap(node)) {
    const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === key);
    const k = pair && isScalar(pair.key) ? pair.key.range?.[0] : undefined;
    if (k !== undefined) offset = k;
  }
  if (offset === undefined) return undefined;
  const { line, col } = lines.linePos(offset);
  return { line, col };
}

function child(
  node: unknown,
  seg: PropertyKey,
): { value: unknown; keyOffset?: number } | undefined {
  if (isMap(node)) {
    const pair = node.items.find((p) =>
      isPair(p) && isScalar(p.key) && String(p.key.value) === String(seg)
    );
    if (!pair) return undefined;
    const keyOffset = isScalar(pair.key) ? pair.key.range?.[0] : undefined;
    return keyOffset === undefined ? { value: pair.value } : { value: pair.value, keyOffset };
  }
  if (isSeq(node) && typeof seg === "number") {
    const item = node.items[seg];
    return item === undefined ? undefined : { value: item };
  }
  return undefined;
}

function rangeStart(node: unknown): number | undefined {
  const n = node as Node | null | undefined;
  return n && typeof n === "object" && "range" in n ? n.range?.[0] : undefined;
}
