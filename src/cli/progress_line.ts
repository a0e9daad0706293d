/**
 * Progress on stderr. On a terminal a transient message (the step a build is
 * at) is one status line rewritten in place (`\r`, clear to end of line)
 * with the time since it began, redrawn at least once a second, and ended
 * with a newline by the next plain message. Elsewhere (CI, a pipe, a dumb
 * terminal, tracing on) every message is a plain line, as it always was.
 */
import type { CliContext } from "./context.ts";
import { formatElapsed, type Progress, type ProgressOptions } from "../build/build_image.ts";
import { terminalSafe } from "../text/terminal_safe.ts";

const PREFIX = "bottle: ";
const CLEAR_LINE = "\r\x1b[K";

/** What a status line is drawn on; injectable so tests give a fake terminal and clock. */
export interface StatusTerminal {
  /** Writes raw text (the status line, no newline). */
  write(text: string): void;
  /** Writes one plain line (the newline is added). */
  line(text: string): void;
  columns(): number;
  /** Milliseconds, any origin. */
  now(): number;
  /** Calls `fn` every `ms` until the returned function is called. */
  every(ms: number, fn: () => void): () => void;
}

/** bottle's progress for `ctx`: a status line where stderr is a terminal, plain lines elsewhere. */
export function stderrProgress(ctx: CliContext): Progress {
  if (!statusLineOn(ctx)) return plainProgress((t) => ctx.err(t));
  return new StatusLine(stderrTerminal(ctx)).progress;
}

/** Every message a line; a transient one is made one line first. */
export function plainProgress(line: (text: string) => void): Progress {
  return (m, opts) => line(`${PREFIX}${opts?.transient ? terminalSafe(m) : m}`);
}

/** The status line and the plain lines around it, on one terminal. */
export class StatusLine {
  #term: StatusTerminal;
  #text: string | undefined;
  #since = 0;
  #stopTicking: (() => void) | undefined;

  constructor(term: StatusTerminal) {
    this.#term = term;
  }

  readonly progress: Progress = (message: string, opts?: ProgressOptions) => {
    if (opts?.transient) return this.#show(message);
    this.end();
    this.#term.line(`${PREFIX}${message}`);
  };

  /** Ends a status line that is showing (a newline after it), keeping what it says on screen. */
  end(): void {
    if (this.#text === undefined) return;
    this.#stopTicking?.();
    this.#stopTicking = undefined;
    this.#text = undefined;
    this.#term.write("\n");
  }

  #show(message: string): void {
    if (this.#text === undefined) {
      this.#since = this.#term.now();
      this.#stopTicking = this.#term.every(1000, () => this.#draw());
    }
    this.#text = terminalSafe(message);
    this.#draw();
  }

  #draw(): void {
    if (this.#text === undefined) return;
    const elapsed = this.#term.now() - this.#since;
    this.#term.write(renderStatus(`${PREFIX}${this.#text}`, elapsed, this.#term.columns()));
  }
}

/**
 * One redraw of the status line: back to the line's start, cleared, the text
 * cut to fit `columns` (a wrapped line could not be redrawn in place) and the
 * elapsed time.
 */
export function renderStatus(text: string, elapsedMs: number, columns: number): string {
  const suffix = ` (${formatElapsed(elapsedMs)})`;
  const room = Math.max(columns - 1 - suffix.length, 10);
  const chars = [...text];
  const fitted = chars.length > room ? `${chars.slice(0, room - 1).join("")}…` : text;
  return `${CLEAR_LINE}${fitted}${suffix}`;
}

/**
 * Only a real terminal on stderr that can clear a line, and no tracing
 * (trace lines would land in the middle of the status line).
 */
function statusLineOn(ctx: CliContext): boolean {
  const term = ctx.env.TERM;
  return Deno.stderr.isTerminal() && !!term && term !== "dumb" && !ctx.env.BOTTLE_TRACE;
}

function stderrTerminal(ctx: CliContext): StatusTerminal {
  const enc = new TextEncoder();
  return {
    write(text) {
      const bytes = enc.encode(text);
      let n = 0;
      while (n < bytes.length) n += Deno.stderr.writeSync(bytes.subarray(n));
    },
    line: (text) => ctx.err(text),
    columns() {
      try {
        return Deno.consoleSize().columns || 80;
      } catch {
        return 80;
      }
    },
    now: () => performance.now(),
    every(ms, fn) {
      const id = setInterval(fn, ms);
      Deno.unrefTimer(id); // a status line never keeps bottle running
      return () => clearInterval(id);
    },
  };
}
