/**
 * Text the agent controls (hosts, paths and reasons in the audit log; later
 * supervise questions and push rejections) is made safe before it reaches a
 * human's terminal: every control character is shown as a visible escape,
 * so nothing the agent sends can move the cursor, retitle the window or
 * hide a line. JSON output stays exact JSON, with the characters JSON leaves
 * raw (DEL, the C1 controls, the Unicode line separators) escaped as \uXXXX.
 */

// C0 controls, DEL, C1 controls, and the bidi/line separators terminals act on.
// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

export function terminalSafe(text: string): string {
  return text.replace(CONTROL, (c) => {
    const code = c.charCodeAt(0);
    if (c === "\t") return "\\t";
    if (c === "\n") return "\\n";
    if (c === "\r") return "\\r";
    return code <= 0xff ? `\\x${hex(code, 2)}` : `\\u${hex(code, 4)}`;
  });
}

/** A JSON text with every character a terminal could act on escaped (still the same JSON value). */
export function jsonTerminalSafe(json: string): string {
  return json.replace(
    /[\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g,
    (c) => `\\u${hex(c.charCodeAt(0), 4)}`,
  );
}

function hex(n: number, width: number): string {
  return n.toString(16).padStart(width, "0");
}
