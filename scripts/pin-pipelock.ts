/**
 * Pins the bundle's pipelock from a release's own data:
 *
 *   gh release download vX.Y.Z --repo luckyPipewrench/pipelock --pattern release-images.json
 *   deno run --allow-read --allow-write scripts/pin-pipelock.ts release-images.json
 *
 * Checks the file (pipelock's schema, tag, commit, digests), then rewrites
 * the pin in src/bundle/pipelock/pipelock_release.ts and the Dockerfile's
 * default. Verify the release's attestation first (pipelock's image-upgrade
 * guide shows how: `gh attestation verify`); this script checks shape, not
 * provenance.
 */
import { parseReleaseImages } from "../src/bundle/pipelock/pipelock_release.ts";

const ROOT = new URL("../", import.meta.url);
const MODULE = new URL("src/bundle/pipelock/pipelock_release.ts", ROOT);
const DOCKERFILE = new URL("images/bundle/Dockerfile", ROOT);

async function main(args: string[]): Promise<number> {
  if (args.length !== 1) {
    console.error("Usage: pin-pipelock.ts RELEASE-IMAGES.JSON");
    return 2;
  }
  let release;
  try {
    release = parseReleaseImages(await Deno.readTextFile(args[0]!));
  } catch (err) {
    console.error(`pin-pipelock: ${(err as Error).message}`);
    return 2;
  }
  const wanted = ["pipelock", "pipelock-init"];
  const images = release.images.filter((i) => wanted.includes(i.name))
    .sort((a, b) => a.name.localeCompare(b.name));
  let module = await Deno.readTextFile(MODULE);
  const start = module.indexOf("export const PIPELOCK_RELEASE");
  const end = module.indexOf("};\n", start) + 3;
  const literal = `export const PIPELOCK_RELEASE: ReleaseImages = ${
    JSON.stringify({ schema: release.schema, tag: release.tag, images }, null, 2)
  };\n`;
  module = module.slice(0, start) + literal + module.slice(end);
  module = module.replace(/its v\d+\.\d+\.\d+ text/, `its ${release.tag} text`)
    .replace(/The digests below are v\d+\.\d+\.\d+'s/, `The digests below are ${release.tag}'s`);
  await Deno.writeTextFile(MODULE, module);
  const init = images.find((i) => i.name === "pipelock-init")!;
  const dockerfile = (await Deno.readTextFile(DOCKERFILE)).replace(
    /^ARG PIPELOCK_IMAGE=.*$/m,
    `ARG PIPELOCK_IMAGE=${init.repository}@${init.digest}`,
  );
  await Deno.writeTextFile(DOCKERFILE, dockerfile);
  console.error(
    `pin-pipelock: pinned ${release.tag} (${release.commit}); run deno fmt, then the canaries`,
  );
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
