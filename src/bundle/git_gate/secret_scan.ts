/**
 * Finds credentials in the lines a push adds: well-known formats (AWS, GitHub,
 * Anthropic, Slack, private keys) and the exact values of this bottle's own
 * secrets. Works on `git log -p -U0` output; reports where, never what (the
 * value itself is never repeated, not even to the agent).
 */

export interface Finding {
  commit: string;
  file: string;
  line: number;
  kind: string;
}

const FORMATS: { kind: string; re: RegExp }[] = [
  { kind: "an AWS access key", re: /\b(?:AKIA|ASIA)[0-9A-Z]{16}\b/ },
  { kind: "a GitHub token", re: /\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})/ },
  { kind: "an Anthropic key", re: /\bsk-ant-[a-z]+\d{2}-(?!bottle-placeholder)[A-Za-z0-9_-]{20,}/ },
  { kind: "a Slack token", re: /\bxox[abposr]-[A-Za-z0-9-]{10,}/ },
  { kind: "a private key", re: /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----/ },
];

/** Secrets shorter than this are not searched for: they would match by chance. */
const MIN_SECRET_LENGTH = 8;

export function scanPatch(patch: string, secrets: readonly string[]): Finding[] {
  const values = secrets.filter((s) => s.length >= MIN_SECRET_LENGTH);
  const findings: Finding[] = [];
  let commit = "";
  let file = "";
  let line = 0;
  // File headers come between "diff --git" and the first hunk; inside a hunk
  // a "+++" line is an added line that starts with "++".
  let inHeader = false;
  for (const text of patch.split("\n")) {
    if (text.startsWith("commit ")) {
      commit = text.slice(7).trim();
      file = "";
      inHeader = false;
    } else if (text.startsWith("diff --git ")) {
      inHeader = true;
      file = "";
    } else if (inHeader && text.startsWith("+++ ")) {
      file = text === "+++ /dev/null" ? "" : text.slice(4).replace(/^b\//, "");
    } else if (text.startsWith("@@")) {
      inHeader = false;
      line = Number(/\+(\d+)/.exec(text)?.[1] ?? 0);
    } else if (!inHeader && text.startsWith("+") && file) {
      const added = text.slice(1);
      const kind = values.some((v) => added.includes(v))
        ? "a secret of this bottle"
        : FORMATS.find((f) => f.re.test(added))?.kind;
      if (kind) findings.push({ commit, file, line, kind });
      line++;
    }
  }
  return findings;
}
