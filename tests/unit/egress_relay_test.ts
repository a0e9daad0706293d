import assert from "node:assert/strict";
import { BufferedWire } from "../../src/bundle/egress/buffered.ts";
import { relay } from "../../src/bundle/egress/relay.ts";
import type { Wire } from "../../src/bundle/egress/wire.ts";

/** `size` bytes of a repeatable pattern that is not periodic at buffer sizes. */
function pattern(size: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = 12345;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

/** A source that fills reads from `data`, at most `step(i)` bytes for the i-th read. */
function source(data: Uint8Array, step: (i: number) => number) {
  const s = { pos: 0, reads: 0 };
  const read = (buf: Uint8Array) => {
    if (s.pos >= data.length) return Promise.resolve(null);
    const n = Math.min(buf.length, step(s.reads++), data.length - s.pos);
    buf.set(data.subarray(s.pos, s.pos + n));
    s.pos += n;
    return Promise.resolve(n);
  };
  return { s, read };
}

/** A sink that copies what it is given (the relay reuses its buffers). */
function sink() {
  const writes: Uint8Array[] = [];
  return {
    writes,
    write: (c: Uint8Array) => {
      writes.push(c.slice());
      return Promise.resolve();
    },
    bytes: () => {
      const out = new Uint8Array(writes.reduce((n, w) => n + w.length, 0));
      let off = 0;
      for (const w of writes) {
        out.set(w, off);
        off += w.length;
      }
      return out;
    },
  };
}

Deno.test("a relay keeps byte order across its buffers and never reads past its limit", async () => {
  const data = pattern(3 * 1024 * 1024 + 17);
  const limit = 2 * 1024 * 1024 + 5;
  const src = source(data, (i) => 1 + ((i * 7919) % 70_000));
  const out = sink();
  const progress = { bytes: 0 };
  await relay(src.read, out.write, limit, progress);
  assert.equal(progress.bytes, limit);
  assert.equal(src.s.pos, limit);
  assert.deepEqual(out.bytes(), data.subarray(0, limit));
});

Deno.test("a relay to the end of the stream reports every byte written", async () => {
  const data = pattern(1_000_003);
  const src = source(data, () => 16_384);
  const out = sink();
  const progress = { bytes: 0 };
  await relay(src.read, out.write, Infinity, progress);
  assert.equal(progress.bytes, data.length);
  assert.deepEqual(out.bytes(), data);
});

Deno.test("bytes that arrive during a slow write go out together in the next one", async () => {
  const data = pattern(10_000);
  const src = source(data, () => 1_000);
  const writes: number[] = [];
  const releases: (() => void)[] = [];
  const write = (c: Uint8Array) => {
    writes.push(c.length);
    return new Promise<void>((resolve) => releases.push(resolve));
  };
  const done = relay(src.read, write, Infinity, { bytes: 0 });
  // The first chunk is written at once; the other nine arrive meanwhile.
  while (src.s.pos < data.length) await new Promise((r) => setTimeout(r, 1));
  assert.deepEqual(writes, [1_000]);
  releases.shift()!();
  while (releases.length === 0) await new Promise((r) => setTimeout(r, 1));
  assert.deepEqual(writes, [1_000, 9_000]);
  releases.shift()!();
  await done;
});

Deno.test("a lone chunk is written at once, not held back for more", async () => {
  const never = new Promise<number | null>(() => {});
  let reads = 0;
  const read = (buf: Uint8Array) => {
    if (reads++ > 0) return never;
    buf.set([1, 2, 3]);
    return Promise.resolve(3);
  };
  const written = Promise.withResolvers<Uint8Array>();
  const write = (c: Uint8Array) => {
    written.resolve(c.slice());
    return Promise.resolve();
  };
  relay(read, write, Infinity, { bytes: 0 });
  assert.deepEqual(await written.promise, new Uint8Array([1, 2, 3]));
});

Deno.test("a failed write ends the relay while a read is still waiting", async () => {
  let reads = 0;
  const read = (buf: Uint8Array) => {
    if (reads++ > 0) return new Promise<number | null>(() => {});
    buf[0] = 1;
    return Promise.resolve(1);
  };
  const write = () => Promise.reject(new Error("agent went away"));
  await assert.rejects(() => relay(read, write, Infinity, { bytes: 0 }), /agent went away/);
});

/** A wire over `chunks` that can also fill a caller's buffer, like `DenoWire`. */
class ReadIntoWire implements Wire {
  constructor(private data: Uint8Array) {}
  read() {
    return Promise.resolve(null);
  }
  readInto(buf: Uint8Array) {
    if (this.data.length === 0) return Promise.resolve(null);
    const n = Math.min(buf.length, this.data.length);
    buf.set(this.data.subarray(0, n));
    this.data = this.data.subarray(n);
    return Promise.resolve(n);
  }
  write() {
    return Promise.resolve();
  }
  closeWrite() {
    return Promise.resolve();
  }
  close() {}
  get left() {
    return this.data.length;
  }
}

Deno.test("copyTo sends pushed-back bytes first, then reads the socket up to its limit", async () => {
  const inner = new ReadIntoWire(new TextEncoder().encode("lo worldNEXT"));
  const from = new BufferedWire(inner);
  from.unshift(new TextEncoder().encode("hel"));
  const out = sink();
  const to: Wire = {
    read: () => Promise.resolve(null),
    write: out.write,
    closeWrite: () => Promise.resolve(),
    close: () => {},
  };
  assert.equal(await from.copyTo(to, 11), 11);
  assert.equal(new TextDecoder().decode(out.bytes()), "hello world");
  assert.equal(inner.left, 4);
  assert.equal(await from.copyTo(to, 10), 4, "end of stream before the limit");
});
