import assert from "node:assert/strict";
import { buildStep, formatElapsed } from "../../src/build/build_image.ts";
import {
  plainProgress,
  renderStatus,
  StatusLine,
  type StatusTerminal,
} from "../../src/cli/progress_line.ts";

/** Whether `s` holds a C0 control character or DEL. */
function hasControl(s: string): boolean {
  return [...s].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f);
}

/** A terminal that records what is written, with a clock and a ticker the test moves. */
function fakeTerminal(columns = 80) {
  const out: string[] = [];
  const t = { ms: 0, tick: undefined as (() => void) | undefined, stopped: 0 };
  const term: StatusTerminal = {
    write: (text) => void out.push(text),
    line: (text) => void out.push(`${text}\n`),
    columns: () => columns,
    now: () => t.ms,
    every: (_ms, fn) => {
      t.tick = fn;
      return () => {
        t.tick = undefined;
        t.stopped++;
      };
    },
  };
  return { term, out, clock: t };
}

Deno.test("build steps: the legacy builder's Step lines", () => {
  assert.deepEqual(buildStep("Step 5/12 : RUN apt-get update"), {
    key: "step 5/12",
    text: "step 5/12: RUN apt-get update",
  });
  assert.equal(buildStep(" ---> Running in 3f2a"), undefined);
  assert.equal(buildStep("hello"), undefined);
});

Deno.test("build steps: BuildKit's vertex lines, with and without a stage", () => {
  assert.deepEqual(buildStep("#7 [2/3] RUN echo hello && exit 3"), {
    key: "#7",
    text: "step 2/3: RUN echo hello && exit 3",
  });
  assert.deepEqual(buildStep("#12 [fetch 4/6] COPY a /b"), {
    key: "#12",
    text: "step 4/6 (fetch): COPY a /b",
  });
  assert.equal(buildStep("#1 [internal] load build definition from Dockerfile"), undefined);
  assert.equal(buildStep("#7 0.412 hello"), undefined);
  assert.equal(buildStep("#7 DONE 0.5s"), undefined);
});

Deno.test("build steps: a long instruction is one line, cut", () => {
  const step = buildStep(`Step 2/3 : RUN apt-get update &&     apt-get install ${"x".repeat(200)}`);
  assert.ok(step!.text.startsWith("step 2/3: RUN apt-get update && apt-get install xxx"));
  assert.equal([...step!.text].length, "step 2/3: ".length + 100);
  assert.ok(step!.text.endsWith("x…"));
});

Deno.test("build steps: a hostile step is made terminal-safe", () => {
  const step = buildStep("Step 1/1 : RUN echo \x1b]0;PWNED\x07\x1b[2J");
  assert.equal(step?.text, "step 1/1: RUN echo \\x1b]0;PWNED\\x07\\x1b[2J");
  assert.ok(!hasControl(step!.text));
});

Deno.test("elapsed times read as seconds, minutes, hours", () => {
  assert.equal(formatElapsed(0), "0 s");
  assert.equal(formatElapsed(42_900), "42 s");
  assert.equal(formatElapsed(72_000), "1m 12 s");
  assert.equal(formatElapsed(3_723_000), "1h 2m");
});

Deno.test("status line: rewritten in place with the elapsed time, ended by the next plain line", () => {
  const { term, out, clock } = fakeTerminal();
  const line = new StatusLine(term);
  line.progress("building agent image bottle/agent:abc", { transient: true });
  clock.ms = 2_000;
  line.progress("building agent image bottle/agent:abc: step 1/2: FROM debian", {
    transient: true,
  });
  clock.ms = 3_400;
  clock.tick!(); // the once-a-second redraw, with nothing new from the build
  line.progress("built agent image bottle/agent:abc in 3 s");
  assert.deepEqual(out, [
    "\r\x1b[Kbottle: building agent image bottle/agent:abc (0 s)",
    "\r\x1b[Kbottle: building agent image bottle/agent:abc: step 1/2: FROM debian (2 s)",
    "\r\x1b[Kbottle: building agent image bottle/agent:abc: step 1/2: FROM debian (3 s)",
    "\n",
    "bottle: built agent image bottle/agent:abc in 3 s\n",
  ]);
  assert.equal(clock.tick, undefined, "the ticker stops with the status line");
  assert.equal(clock.stopped, 1);
  // A plain line with no status showing is just a line; end() with none showing writes nothing.
  line.progress("starting the agent");
  line.end();
  assert.equal(out.at(-1), "bottle: starting the agent\n");
  assert.equal(out.length, 6);
});

Deno.test("status line: the time runs from the first status after a plain line", () => {
  const { term, out, clock } = fakeTerminal();
  const line = new StatusLine(term);
  clock.ms = 10_000;
  line.progress("saving x for smolvm", { transient: true });
  clock.ms = 75_000;
  line.progress("packing x into a .smolmachine", { transient: true });
  assert.equal(out.at(-1), "\r\x1b[Kbottle: packing x into a .smolmachine (1m 5 s)");
  line.end();
  assert.equal(out.at(-1), "\n");
});

Deno.test("status line: hostile build output cannot escape the line", () => {
  const { term, out } = fakeTerminal();
  new StatusLine(term).progress("step 1/1: RUN echo \x1b]0;PWNED\x07\r\n", { transient: true });
  const drawn = out.join("");
  assert.ok(drawn.startsWith("\r\x1b[K"));
  // The only control characters are the line's own `\r` and `ESC [K`.
  assert.ok(!hasControl(drawn.slice("\r\x1b[K".length)));
  assert.match(drawn, /\\x1b\]0;PWNED\\x07\\r\\n/);
});

Deno.test("status line: cut to the terminal's width, the elapsed time kept", () => {
  const drawn = renderStatus(`bottle: ${"x".repeat(200)}`, 5_000, 40);
  const visible = drawn.slice("\r\x1b[K".length);
  assert.equal([...visible].length, 39);
  assert.ok(visible.endsWith("… (5 s)"));
  assert.equal(renderStatus("bottle: short", 0, 40), "\r\x1b[Kbottle: short (0 s)");
});

Deno.test("plain progress: every message a line, transient ones too, made terminal-safe", () => {
  const lines: string[] = [];
  const progress = plainProgress((t) => lines.push(t));
  progress("building agent image bottle/agent:abc", { transient: true });
  progress("building agent image bottle/agent:abc: step 1/1: RUN echo \x1b]0;PWNED\x07", {
    transient: true,
  });
  progress("built agent image bottle/agent:abc in 1 s");
  assert.deepEqual(lines, [
    "bottle: building agent image bottle/agent:abc",
    "bottle: building agent image bottle/agent:abc: step 1/1: RUN echo \\x1b]0;PWNED\\x07",
    "bottle: built agent image bottle/agent:abc in 1 s",
  ]);
  assert.ok(lines.every((l) => !l.includes("\r")));
});
