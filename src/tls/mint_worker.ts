/**
 * Worker side of `CaMinter`: loads the X.509 library on its own thread the
 * moment it starts (that load is most of the CPU a launch spends in bottle
 * itself), then mints the CAs it is asked for.
 */
import { mintCa } from "./ca.ts";

const self = globalThis as unknown as {
  onmessage: ((e: MessageEvent<{ commonNames: string[] }>) => void) | null;
  postMessage(m: unknown): void;
};

self.onmessage = async (e) => {
  try {
    const cas = await Promise.all(e.data.commonNames.map((commonName) => mintCa({ commonName })));
    self.postMessage({ ok: true, cas });
  } catch (err) {
    self.postMessage({ ok: false, error: err instanceof Error ? err.message : String(err) });
  }
};
