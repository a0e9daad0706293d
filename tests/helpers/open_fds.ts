/** This process's open descriptors (Linux /proc), to see handles closed. */

/** How many descriptors are open; undefined where /proc/self/fd does not exist. */
export function openFds(): number | undefined {
  if (Deno.build.os !== "linux") return undefined;
  return [...Deno.readDirSync("/proc/self/fd")].length;
}

/** Open descriptors on `path` (Linux). */
export function fdsOn(path: string): number {
  let n = 0;
  for (const entry of Deno.readDirSync("/proc/self/fd")) {
    try {
      if (Deno.readLinkSync(`/proc/self/fd/${entry.name}`) === path) n++;
    } catch {
      // closed while listing
    }
  }
  return n;
}
