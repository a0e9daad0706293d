/** Plain-text tables for terminal output: left-aligned columns, two spaces apart. */
export function table(header: string[], rows: string[][]): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? "").length)));
  return all.map((r) =>
    r.map((c, i) => i === r.length - 1 ? c : c.padEnd(widths[i]!)).join("  ").trimEnd()
  )
    .join("\n");
}

/** How long ago an ISO 8601 time was: `12s`, `5m`, `3h`, `2d`. */
export function age(createdAt: string): string {
  const t = Date.parse(createdAt);
  if (Number.isNaN(t)) return createdAt;
  const s = Math.max(0, Math.round((Date.now() - t) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86400)}d`;
}
