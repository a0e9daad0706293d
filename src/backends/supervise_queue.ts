/**
 * A bottle's supervise queue as `bottle supervise` sees it: read and
 * answered in the bottle's state dir when the engine shares this host's
 * files, or through the engine (a copy out of the bundle, an answer written
 * by a command in it) when the queue is in the bundle. The answer is the
 * same atomic, first-answer-wins write either way.
 */
import type { DockerCli } from "../engine/docker_cli.ts";
import type { BottleRecord } from "../state/bottle_record.ts";
import {
  answerFile,
  parseQueueFiles,
  QUEUE_IN_BUNDLE,
  readQueueDir,
  type SuperviseAnswer,
  type SuperviseRequest,
  writeAnswer,
} from "../bundle/supervise/queue_files.ts";
import { readTarFiles } from "../archive/tar.ts";

export interface SuperviseQueue {
  list(): Promise<SuperviseRequest[]>;
  /** False when the request already had an answer (the first one stands). */
  answer(a: SuperviseAnswer): Promise<boolean>;
}

export function superviseQueueOf(
  record: BottleRecord,
  docker: () => Promise<DockerCli>,
): SuperviseQueue | undefined {
  const q = record.supervise;
  if (!q) return undefined;
  if (q.transport === "mount") {
    return {
      list: () => readQueueDir(q.hostDir),
      answer: (a) => writeAnswer(q.hostDir, a),
    };
  }
  const bundle = record.bundleContainer;
  return {
    list: async () => {
      const tar = await (await docker()).copyOut(bundle, `${QUEUE_IN_BUNDLE}/.`);
      const files = new Map<string, string>();
      const dec = new TextDecoder();
      for (const [path, data] of readTarFiles(tar)) {
        files.set(path.split("/").pop()!, dec.decode(data));
      }
      return parseQueueFiles(files);
    },
    answer: async (a) => {
      // The same write as on the host: a temporary file linked into place.
      const r = await (await docker()).run([
        "exec",
        "-i",
        bundle,
        "sh",
        "-c",
        // Exit 3: the slot is taken (an answer, or the daemon's closed marker); any other failure is an error.
        'set -e; t=$(mktemp "$1.XXXXXX"); cat > "$t"; if ln "$t" "$1" 2>/dev/null; then rm -f "$t"; elif [ -e "$1" ]; then rm -f "$t"; exit 3; else rm -f "$t"; exit 4; fi',
        "answer",
        answerFile(QUEUE_IN_BUNDLE, a.id),
      ], { stdin: JSON.stringify(a, null, 2) + "\n", check: false });
      if (r.code === 3) return false;
      if (r.code !== 0) {
        throw new Error(`Cannot answer through the engine (${bundle}): ${r.stderr.trim()}`);
      }
      return true;
    },
  };
}
