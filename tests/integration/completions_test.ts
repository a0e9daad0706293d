/**
 * `bottle completions`: each shell's script, loaded into that real shell,
 * completes commands, flags, choices, agent names (the cwd's bottle.yaml)
 * and bottle names (a labelled container on the engine, as `bottle ls` finds
 * bottles); the names by calling back into the `bottle` on PATH, as in a
 * user's shell. Asking for names never fails, and never prints an error.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { run } from "../../src/proc/runner.ts";
import { cli } from "../helpers/cli.ts";
import { bottle, bottleEnv, MAIN, projectWith } from "../helpers/bottle_env.ts";

const AGENT_FILE = "version: 1\nagents:\n  reviewer: {description: for the completion tests}\n";

type Shell = "bash" | "zsh" | "fish";

interface Fixture {
  env: Record<string, string>;
  cwd: string;
  dir: string;
  script: string;
  /** A bottle `bottle ls` lists: a labelled container of this test's. */
  bottleName: string;
}

/**
 * A private HOME with a project holding `reviewer`, a `bottle` on PATH that
 * runs this source tree, a "running bottle" on the engine, and the shell's
 * script as `bottle completions <shell>` prints it.
 */
async function fixture(stack: AsyncDisposableStack, shell: Shell): Promise<Fixture> {
  const be = stack.use(await bottleEnv());
  const home = be.env.HOME!;
  const bin = join(home, "bin");
  await Deno.mkdir(bin);
  await Deno.writeTextFile(
    join(bin, "bottle"),
    `#!/bin/sh\nexec '${Deno.execPath()}' run --allow-all '${MAIN}' "$@"\n`,
    { mode: 0o755 },
  );
  const env = { ...be.env, PATH: `${bin}:${Deno.env.get("PATH") ?? ""}` };
  const cwd = await projectWith(be, AGENT_FILE);
  const bottleName = `claude-c${crypto.randomUUID().slice(0, 8)}`;
  const started = await run([
    "docker",
    "run",
    "-d",
    "--rm",
    ...["--label", "bottle.managed=true", "--label", `bottle.id=${bottleName}`],
    ...["--label", "bottle.agent=claude", "--label", "bottle.role=agent"],
    "debian:bookworm-slim",
    "sleep",
    "300",
  ]);
  const container = started.stdout.trim();
  stack.defer(async () => {
    await run(["docker", "rm", "-f", container], { check: false });
  });
  const made = await bottle(["completions", shell], env, { cwd });
  assert.equal(made.code, 0, made.stderr);
  const script = join(home, `bottle.${shell}`);
  await Deno.writeTextFile(script, made.stdout);
  return { env, cwd, dir: home, script, bottleName };
}

/** What a shell offers for `line` (the cursor at its end). */
type Complete = (f: Fixture, line: string) => Promise<string[]>;

const lines = (s: string) => s.split("\n").filter(Boolean);

/**
 * bash: the function `complete -p bottle` names, called as readline calls
 * it, with COMP_WORDS split as readline splits them (at "=" too).
 */
const BASH_DRIVER = `source "$1"; shift
read -ra spec <<< "$(complete -p bottle)"
for ((i = 0; i < \${#spec[@]}; i++)); do [[ \${spec[i]} == -F ]] && fn=\${spec[i + 1]}; done
COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=\${#COMP_LINE}
COMPREPLY=()
"$fn" bottle "\${COMP_WORDS[COMP_CWORD]}" "\${COMP_WORDS[COMP_CWORD - 1]}"
printf '%s\\n' "\${COMPREPLY[@]}"
`;

const bash: Complete = async (f, line) => {
  const words = line.split(" ").flatMap((w) => w.split(/(=)/).filter((p, i) => p || i === 0));
  const r = await run(
    ["bash", "--norc", "--noprofile", "-c", BASH_DRIVER, "bash", f.script, ...words],
    { env: f.env, cwd: f.cwd, check: false, timeoutMs: 30_000 },
  );
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, "", `bash printed errors for "${line}"`);
  return lines(r.stdout);
};

/**
 * zsh: an interactive zsh on a pty (zpty) with compinit and the script
 * loaded is sent the line and a TAB; its compadd records every match the
 * completion system would show (after matching), and a comppostfunc says
 * when completion is over. Its stderr goes to a file that must stay empty.
 */
const ZSHRC = `exec 2>>"$BOTTLE_CAPTURE.err"
autoload -U compinit && compinit -u -D
source "$BOTTLE_COMPLETION_SCRIPT"
compadd() {
  if (( \${@[(I)-[OAD]]} )); then builtin compadd "$@"; return; fi
  local -a __hits
  builtin compadd -O __hits "$@"
  (( $#__hits )) && print -rl -- "\${__hits[@]}" >> "$BOTTLE_CAPTURE"
  builtin compadd "$@"
}
_capture_done() { print done >> "$BOTTLE_CAPTURE.done" }
comppostfuncs=(_capture_done)
bindkey '^I' complete-word
`;

const ZSH_DRIVER = `zmodload zsh/zpty || exit 3
zpty z "ZDOTDIR=\${(q)1} zsh -d -i"
zpty -w -n z "$2"$'\\t'
local chunk
repeat 400; do
  [[ -e $BOTTLE_CAPTURE.done ]] && break
  zpty -r -t z chunk 2>/dev/null
  sleep 0.05
done
zpty -d z
[[ -e $BOTTLE_CAPTURE.done ]] || { print -u2 "no completion ran for: $2"; exit 1 }
`;

const zsh: Complete = async (f, line) => {
  const zdotdir = join(f.dir, "zdotdir");
  await Deno.mkdir(zdotdir, { recursive: true });
  await Deno.writeTextFile(join(zdotdir, ".zshrc"), ZSHRC);
  const capture = join(zdotdir, "capture");
  for (const p of [capture, `${capture}.err`, `${capture}.done`]) {
    await Deno.remove(p).catch(() => {});
  }
  const r = await run(["zsh", "-f", "-c", ZSH_DRIVER, "zsh", zdotdir, line], {
    env: { ...f.env, BOTTLE_CAPTURE: capture, BOTTLE_COMPLETION_SCRIPT: f.script },
    cwd: f.cwd,
    check: false,
    timeoutMs: 30_000,
  });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(await Deno.readTextFile(`${capture}.err`), "", `zsh printed errors for "${line}"`);
  return lines(await Deno.readTextFile(capture).catch(() => ""));
};

/** fish: its own `complete -C`, with the script sourced. */
const fish: Complete = async (f, line) => {
  const r = await run(
    ["fish", "--no-config", "-c", "source $argv[1]; complete -C $argv[2]", f.script, line],
    { env: f.env, cwd: f.cwd, check: false, timeoutMs: 30_000 },
  );
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, "", `fish printed errors for "${line}"`);
  return lines(r.stdout).map((l) => l.split("\t")[0]!);
};

const SHELLS: Record<Shell, Complete> = { bash, zsh, fish };

for (const [shell, complete] of Object.entries(SHELLS) as [Shell, Complete][]) {
  Deno.test(`completions: ${shell} completes commands, flags, agents and bottles`, async (t) => {
    await using stack = new AsyncDisposableStack();
    const f = await fixture(stack, shell);
    const cases: [line: string, offers: string[], not?: string[]][] = [
      ["bottle st", ["start", "stop"], ["plan", "--help"]],
      ["bottle start --de", ["--detach"]],
      ["bottle exec -", ["-u", "--user", "-w", "--workdir"]],
      ["bottle start --backend ", ["docker", "smolmachines"], ["claude"]],
      ["bottle start --backend=s", ["smolmachines"]],
      ["bottle config ", ["schema"]],
      ["bottle completions ", ["bash", "zsh", "fish"]],
      ["bottle start ", ["reviewer", "claude"], [f.bottleName, "--detach"]],
      ["bottle build r", ["reviewer"], ["claude"]],
      ["bottle stop ", [f.bottleName], ["reviewer"]],
      ["bottle logs ", [f.bottleName]],
      ["bottle start -- ", [], ["reviewer", "claude"]],
    ];
    for (const [line, offers, not = []] of cases) {
      await t.step(`"${line}"`, async () => {
        const got = await complete(f, line);
        // fish offers `--backend=smolmachines` whole; the others, what follows "=".
        const seen = got.map((w) => w.replace(/^--backend=/, ""));
        for (const w of offers) assert.ok(seen.includes(w), `${w} not in: ${got.join(" ")}`);
        for (const w of not) assert.ok(!seen.includes(w), `${w} in: ${got.join(" ")}`);
        if (!offers.length) assert.deepEqual(got, []);
      });
    }
  });
}

Deno.test("completions: names are silent when they cannot be told, and exit 0", async () => {
  const home = await Deno.makeTempDir({ prefix: "bottle-completions-" });
  try {
    const broken = join(home, "broken");
    await Deno.mkdir(broken);
    await Deno.writeTextFile(join(broken, "bottle.yaml"), "version: 1\nagents: [not, a, map\n");
    const agents = await cli(["completions", "--names", "agents"], { cwd: broken, home });
    assert.deepEqual(agents, { code: 0, stdout: "", stderr: "" });
    const bottles = await cli(["completions", "--names", "bottles"], {
      home,
      env: { BOTTLE_DOCKER: join(home, "no-such-docker") },
    });
    assert.deepEqual(bottles, { code: 0, stdout: "", stderr: "" });
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("completions: no shell is a usage error naming the shells", async () => {
  const r = await cli(["completions"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^bottle: Name a shell: bottle completions bash, zsh or fish/);
});
