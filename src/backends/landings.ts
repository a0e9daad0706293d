/**
 * What a bottle pushed, brought home into the host repository once its
 * bundle is gone, for both transports and for both ends of a bottle (the
 * launch's teardown and `bottle stop`): a copied workspace's branches
 * fetched out of its volume (workspace_copy.ts), a mounted one's objects
 * imported from its store (git/landing_store.ts). What cannot be brought
 * home stays where it is, and the bottle's record is kept to say where.
 */
import type { DockerCli } from "../engine/docker_cli.ts";
import { type BottleRecord, writeRecord } from "../state/bottle_record.ts";
import { fetchLandings } from "./workspace_copy.ts";
import { importLandingStore } from "../git/landing_store.ts";
import { removeLandingDirIfEmpty } from "../git/landing_dir.ts";

export type Landing = NonNullable<BottleRecord["landing"]>;

/** Brings the pushes home; returns the branches a copied workspace brought. */
export async function bringHome(docker: DockerCli, l: Landing): Promise<string[]> {
  if (l.copy) {
    // A bundle that never started pushed nothing.
    if (!l.copy.image) return [];
    return await fetchLandings(docker, {
      repo: l.repo,
      prefix: l.prefix,
      volume: l.copy.volume,
      image: l.copy.image,
    });
  }
  if (l.store) await importLandingStore(l.repo, l.store);
  await removeLandingDirIfEmpty(l.repo, l.prefix);
  return [];
}

/** Where pushes that could not be brought home are, for the user. */
export function keptWhere(l: Landing): string {
  return l.copy ? `volume ${l.copy.volume}` : `${l.store}`;
}

/**
 * Keeps the record of a bottle whose pushes stayed behind, naming what is
 * left of it: only the copied workspace's volume (everything else is gone).
 */
export async function keepRecord(stateDir: string, record: BottleRecord): Promise<void> {
  const vol = record.landing?.copy?.volume;
  await writeRecord(stateDir, { ...record, networks: [], volumes: vol ? [vol] : [] });
}
