/**
 * Mints the bottle's CAs on another thread: started before the agent file is
 * even read, the worker has loaded the X.509 library by the time the plan
 * names the CAs, so a launch never waits for that load on its own thread.
 */
import type { MintedCa } from "./ca.ts";

export type MintCas = (commonNames: string[]) => Promise<MintedCa[]>;

export function startCaMinter(): MintCas {
  const worker = new Worker(new URL("./mint_worker.ts", import.meta.url).href, { type: "module" });
  let used = false;
  return (commonNames) => {
    if (used) return Promise.reject(new Error("startCaMinter: one mint per minter"));
    used = true;
    return new Promise<MintedCa[]>((resolve, reject) => {
      worker.onmessage = (e: MessageEvent<{ ok: boolean; cas?: MintedCa[]; error?: string }>) => {
        worker.terminate();
        if (e.data.ok) resolve(e.data.cas!);
        else reject(new Error(`Cannot mint the bottle's CAs: ${e.data.error}`));
      };
      worker.onerror = (e) => {
        e.preventDefault();
        worker.terminate();
        reject(new Error(`Cannot mint the bottle's CAs: ${e.message}`));
      };
      worker.postMessage({ commonNames });
    });
  };
}

/** The same, on this thread (tests, and callers with nothing to overlap). */
export const mintCasHere: MintCas = async (commonNames) => {
  const { mintCa } = await import("./ca.ts");
  return await Promise.all(commonNames.map((commonName) => mintCa({ commonName })));
};
