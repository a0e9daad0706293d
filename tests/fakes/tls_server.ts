/**
 * TEST-ONLY HTTPS server under its own test CA (minted with src/tls/ca.ts),
 * for the fakes that stand in for the internet: a certificate for made-up
 * names, the CA in a file a bottle can be told to trust, and a close that
 * stops the server and removes that file.
 */
import { loadCa, mintCa } from "../../src/tls/ca.ts";
import { mintLeaf } from "../../src/tls/leaf.ts";

export interface TlsServer {
  readonly port: number;
  readonly caCertPem: string;
  readonly caFile: string;
  close(): Promise<void>;
}

export async function serveTls(
  opts: { names: string[]; caName: string; hostname?: string },
  handler: Deno.ServeHandler,
): Promise<TlsServer> {
  const minted = await mintCa({ commonName: opts.caName });
  const leaf = await mintLeaf(await loadCa(minted.certPem, minted.keyPem), opts.names);
  const caFile = await Deno.makeTempFile({ prefix: "test-server-ca-", suffix: ".pem" });
  await Deno.writeTextFile(caFile, minted.certPem);
  const ac = new AbortController();
  const listening = Promise.withResolvers<number>();
  const server = Deno.serve({
    hostname: opts.hostname ?? "127.0.0.1",
    port: 0,
    cert: leaf.certPem,
    key: leaf.keyPem,
    signal: ac.signal,
    onListen: ({ port }) => listening.resolve(port),
  }, handler);
  return {
    port: await listening.promise,
    caCertPem: minted.certPem,
    caFile,
    async close() {
      ac.abort();
      await server.finished.catch(() => {});
      await Deno.remove(caFile).catch(() => {});
    },
  };
}
