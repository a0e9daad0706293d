/**
 * A small tar writer for registry tests: builds archives in memory with the
 * header variants real tools write (ustar prefix, GNU `././@LongLink`, PAX
 * `path`/`linkpath`, base-256 sizes), so the reader is tested against each
 * without depending on which `tar` the machine has.
 */

export interface TarInput {
  name: string;
  data?: Uint8Array | string;
  type?: "file" | "directory" | "symlink" | "hardlink";
  linkName?: string;
  /** How to store a name or link name longer than 100 bytes. Default "pax". */
  longNames?: "ustar-prefix" | "gnu" | "pax";
  /** Write the size field in GNU base-256 form. */
  base256Size?: boolean;
  /** Write the GNU magic ("ustar  \0") instead of POSIX ("ustar\0" "00"). */
  gnuMagic?: boolean;
}

const BLOCK = 512;
const encoder = new TextEncoder();

export function tarBytes(
  inputs: readonly TarInput[],
  options: { endBlocks?: number } = {},
): Uint8Array<
  ArrayBuffer
> {
  const parts: Uint8Array[] = [];
  for (const input of inputs) parts.push(...entry(input));
  parts.push(new Uint8Array(BLOCK * (options.endBlocks ?? 2)));
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let pos = 0;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

function entry(input: TarInput): Uint8Array[] {
  const data = typeof input.data === "string"
    ? encoder.encode(input.data)
    : input.data ?? new Uint8Array();
  const type = input.type ?? "file";
  const typeflag = { file: "0", directory: "5", symlink: "2", hardlink: "1" }[type];
  const mode = input.longNames ?? "pax";
  const out: Uint8Array[] = [];
  let name = input.name;
  let prefix = "";
  let linkName = input.linkName ?? "";
  const pax: string[] = [];

  if (encoder.encode(name).length > 100) {
    if (mode === "gnu") {
      out.push(...extension("././@LongLink", "L", encoder.encode(`${name}\0`)));
      name = name.slice(0, 100);
    } else if (mode === "pax") {
      pax.push(record("path", name));
      name = name.slice(0, 100);
    } else {
      const cut = name.lastIndexOf("/", 155);
      if (cut < 0 || name.length - cut - 1 > 100) throw new Error(`Name cannot be split: ${name}`);
      prefix = name.slice(0, cut);
      name = name.slice(cut + 1);
    }
  }
  if (encoder.encode(linkName).length > 100) {
    if (mode === "gnu") {
      out.push(...extension("././@LongLink", "K", encoder.encode(`${linkName}\0`)));
    } else {
      pax.push(record("linkpath", linkName));
    }
    linkName = linkName.slice(0, 100);
  }
  if (pax.length > 0) {
    out.push(...extension(`PaxHeaders/${name.slice(0, 80)}`, "x", encoder.encode(pax.join(""))));
  }
  out.push(header({
    name,
    prefix,
    linkName,
    typeflag,
    size: type === "file" ? data.length : 0,
    base256: input.base256Size ?? false,
    gnuMagic: input.gnuMagic ?? false,
  }));
  if (type === "file") out.push(...padded(data));
  return out;
}

function extension(name: string, typeflag: string, data: Uint8Array): Uint8Array[] {
  return [
    header({
      name,
      prefix: "",
      linkName: "",
      typeflag,
      size: data.length,
      base256: false,
      gnuMagic: false,
    }),
    ...padded(data),
  ];
}

/** One PAX record; its length prefix counts itself. */
function record(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  const bodyLength = encoder.encode(body).length;
  let length = bodyLength;
  while (bodyLength + String(length).length !== length) length = bodyLength + String(length).length;
  return `${length}${body}`;
}

function padded(data: Uint8Array): Uint8Array[] {
  const rest = data.length % BLOCK;
  return rest === 0 ? [data] : [data, new Uint8Array(BLOCK - rest)];
}

function header(h: {
  name: string;
  prefix: string;
  linkName: string;
  typeflag: string;
  size: number;
  base256: boolean;
  gnuMagic: boolean;
}): Uint8Array {
  const block = new Uint8Array(BLOCK);
  const put = (offset: number, length: number, text: string) => {
    const bytes = encoder.encode(text);
    block.set(bytes.subarray(0, length), offset);
  };
  const octal = (offset: number, length: number, value: number) =>
    put(offset, length, `${value.toString(8).padStart(length - 1, "0")}\0`);
  put(0, 100, h.name);
  octal(100, 8, 0o644);
  octal(108, 8, 0);
  octal(116, 8, 0);
  if (h.base256) {
    block[124] = 0x80;
    let v = h.size;
    for (let i = 135; i > 124; i--) {
      block[i] = v % 256;
      v = Math.floor(v / 256);
    }
  } else {
    octal(124, 12, h.size);
  }
  octal(136, 12, 0);
  put(156, 1, h.typeflag);
  put(157, 100, h.linkName);
  if (h.gnuMagic) {
    put(257, 8, "ustar  \0");
  } else {
    put(257, 6, "ustar\0");
    put(263, 2, "00");
  }
  put(345, 155, h.prefix);
  block.fill(0x20, 148, 156);
  const sum = block.reduce((a, b) => a + b, 0);
  put(148, 8, `${sum.toString(8).padStart(6, "0")}\0 `);
  return block;
}
