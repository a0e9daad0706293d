/** Whether this process runs under the `deno` CLI (from source), not as a compiled bottle. */
import { basename } from "node:path";

export function underDenoCli(): boolean {
  return /^deno(\.exe)?$/.test(basename(Deno.execPath()));
}
