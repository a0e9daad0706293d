/**
 * Extra CA certificates trusted while building images, for users behind a
 * TLS-intercepting proxy (corporate networks, and the machines bottle is
 * built on). Three ways in, merged: `--build-ca FILE` flags, `build.ca_certs`
 * in the agent file, and `BOTTLE_BUILD_CA_CERTS` (a `:`-separated list of
 * files). They reach the Dockerfiles as the BOTTLE_BUILD_CA_PEM build
 * argument, which only the fetch stages use: they are not in the final image.
 */
import { UserError } from "../errors.ts";

export const BUILD_CA_ENV = "BOTTLE_BUILD_CA_CERTS";

export function buildCaFiles(
  flags: string[],
  fromConfig: string[],
  env: Record<string, string | undefined>,
): string[] {
  const fromEnv = (env[BUILD_CA_ENV] ?? "").split(":").filter(Boolean);
  return [...new Set([...flags, ...fromConfig, ...fromEnv])];
}

/** Reads and concatenates the CA files; each must hold at least one PEM certificate. */
export async function readBuildCas(files: string[]): Promise<string> {
  const pems: string[] = [];
  for (const f of files) {
    let text: string;
    try {
      text = await Deno.readTextFile(f);
    } catch (err) {
      throw new UserError(`Cannot read build CA certificate "${f}": ${(err as Error).message}`);
    }
    const certs = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g);
    if (!certs) throw new UserError(`Build CA file "${f}" holds no PEM certificate`);
    pems.push(...certs);
  }
  return pems.join("\n");
}
