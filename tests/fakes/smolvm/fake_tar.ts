/**
 * Streams a would-be `docker save` archive: checks it is a tar with a
 * top-level manifest.json or index.json, and hashes it, without buffering it.
 */
import { createHash } from "node:crypto";
import { Fail } from "./fake_errors.ts";

export interface TarSummary {
  kind: "oci-layout" | "docker-legacy";
  sha256: string;
  bytes: number;
  entries: number;
  topLevel: string[];
  /** The image's config digest (its ID in the engine) from manifest.json, when it has one. */
  configDigest: string | null;
}

export async function scanDockerSave(
  stream: ReadableStream<Uint8Array>,
  what: string,
): Promise<TarSummary> {
  const hash = createHash("sha256");
  const header = new Uint8Array(512);
  let fill = 0;
  let skip = 0;
  // Held in an object: TS does not track assignments made inside the closures.
  const st: { special: { type: string; chunks: Uint8Array[]; remaining: number } | null } = {
    special: null,
  };
  let pendingName: string | null = null;
  let manifestJson: string | null = null;
  let zeroBlocks = 0;
  let ended = false;
  let entries = 0;
  let bytes = 0;
  const top = new Set<string>();
  const dec = new TextDecoder();

  const str = (b: Uint8Array, from: number, len: number) => {
    const s = b.subarray(from, from + len);
    const nul = s.indexOf(0);
    return dec.decode(nul >= 0 ? s.subarray(0, nul) : s);
  };
  const finishSpecial = () => {
    const data = new Uint8Array(st.special!.chunks.reduce((n, c) => n + c.length, 0));
    let o = 0;
    for (const c of st.special!.chunks) {
      data.set(c, o);
      o += c.length;
    }
    if (st.special!.type === "L") pendingName = str(data, 0, data.length);
    else if (st.special!.type === "manifest") manifestJson = dec.decode(data);
    else {
      const m = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(dec.decode(data));
      if (m) pendingName = m[1]!;
    }
    st.special = null;
  };
  const onHeader = () => {
    if (header.every((b) => b === 0)) {
      if (++zeroBlocks === 2) ended = true;
      return;
    }
    zeroBlocks = 0;
    let sum = 0;
    for (let k = 0; k < 512; k++) sum += k >= 148 && k < 156 ? 32 : header[k]!;
    const stored = parseInt(str(header, 148, 8).trim() || "x", 8);
    if (stored !== sum) throw new Fail(`${what}: not a tar archive (bad header checksum)`);
    let size: number;
    if (header[124]! & 0x80) {
      size = 0;
      for (let k = 125; k < 136; k++) size = size * 256 + header[k]!;
    } else {
      size = parseInt(str(header, 124, 12).trim() || "0", 8);
    }
    const type = String.fromCharCode(header[156]!);
    skip = Math.ceil(size / 512) * 512;
    if (type === "L" || type === "x") {
      st.special = { type, chunks: [], remaining: size };
      if (size === 0) finishSpecial();
      return;
    }
    if (type === "g") return;
    const magic = str(header, 257, 5);
    const prefix = magic === "ustar" ? str(header, 345, 155) : "";
    let name = pendingName ?? (prefix ? `${prefix}/${str(header, 0, 100)}` : str(header, 0, 100));
    pendingName = null;
    name = name.replace(/^(\.\/)+/, "");
    entries++;
    if (name !== "" && !name.replace(/\/$/, "").includes("/")) top.add(name.replace(/\/$/, ""));
    if (name === "manifest.json" && (type === "0" || type === "\0") && size < 1 << 20) {
      st.special = { type: "manifest", chunks: [], remaining: size };
      if (size === 0) finishSpecial();
    }
  };

  for await (const chunk of stream) {
    hash.update(chunk);
    bytes += chunk.length;
    let i = 0;
    while (i < chunk.length && !ended) {
      if (skip > 0) {
        const n = Math.min(skip, chunk.length - i);
        if (st.special && st.special.remaining > 0) {
          const m = Math.min(n, st.special.remaining);
          st.special.chunks.push(chunk.slice(i, i + m));
          st.special.remaining -= m;
        }
        skip -= n;
        i += n;
        if (skip === 0 && st.special) finishSpecial();
        continue;
      }
      const n = Math.min(512 - fill, chunk.length - i);
      header.set(chunk.subarray(i, i + n), fill);
      fill += n;
      i += n;
      if (fill === 512) {
        fill = 0;
        onHeader();
      }
    }
  }
  if (bytes === 0) throw new Fail(`${what}: empty input, expected a "docker save" tar archive`);
  if (skip > 0 || fill > 0) throw new Fail(`${what}: truncated tar archive`);
  if (!top.has("manifest.json") && !top.has("index.json")) {
    throw new Fail(
      `${what}: not a "docker save" archive: no top-level manifest.json or index.json (found: ${
        [...top].slice(0, 10).join(", ") || "nothing"
      })`,
    );
  }
  return {
    kind: top.has("index.json") ? "oci-layout" : "docker-legacy",
    sha256: hash.digest("hex"),
    bytes,
    entries,
    topLevel: [...top].sort(),
    configDigest: configDigestOf(manifestJson),
  };
}

/** `docker save`'s manifest.json names the config as "<id>.json" (legacy) or "blobs/sha256/<id>". */
function configDigestOf(manifestJson: string | null): string | null {
  if (manifestJson === null) return null;
  try {
    const config = String((JSON.parse(manifestJson) as { Config?: string }[])[0]?.Config ?? "");
    const m = /(?:^|\/)([0-9a-f]{64})(?:\.json)?$/.exec(config);
    return m ? `sha256:${m[1]}` : null;
  } catch {
    return null;
  }
}
