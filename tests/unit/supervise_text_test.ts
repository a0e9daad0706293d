import assert from "node:assert/strict";
import { formatAuditLine } from "../../src/cli/logs.ts";
import { answerFor, requestText } from "../../src/cli/supervise.ts";
import type { SuperviseRequest } from "../../src/bundle/supervise/queue_files.ts";

Deno.test("logs: supervise requests and answers read as one line each, made safe", () => {
  const ask = formatAuditLine(JSON.stringify({
    time: "2026-12-03T10:00:01.000Z",
    daemon: "supervise",
    event: "request",
    id: "0badc0de",
    tool: "request_approval",
    text: "deploy \x1b]0;PWNED\x07",
  }));
  assert.equal(ask, "10:00:01 ASK 0badc0de request_approval: deploy \\x1b]0;PWNED\\x07");
  const answer = formatAuditLine(JSON.stringify({
    time: "2026-12-03T10:00:09.000Z",
    daemon: "supervise",
    event: "answered",
    id: "0badc0de",
    tool: "request_approval",
    decision: "deny",
    by: "ann@host",
    message: "not today",
  }));
  assert.equal(answer, "10:00:09 ANSWER 0badc0de request_approval deny by ann@host: not today");
  const expired = formatAuditLine(JSON.stringify({
    time: "2026-12-03T10:30:01.000Z",
    daemon: "supervise",
    event: "timed-out",
    id: "0badc0de",
    tool: "ask_human",
    reason: "no answer within 30 min",
  }));
  assert.equal(expired, "10:30:01 TIMED-OUT 0badc0de ask_human (no answer within 30 min)");
});

const request = (over: Partial<SuperviseRequest>): SuperviseRequest => ({
  v: 1,
  id: "0badc0de",
  bottle: "b-1",
  kind: "question",
  tool: "ask_human",
  createdAt: "2026-12-03T10:00:00.000Z",
  expiresAt: "2026-12-03T10:30:00.000Z",
  body: { question: "Which?", choices: ["main", "next\x1b[2J"] },
  state: "pending",
  ...over,
});

Deno.test("supervise: a request in one line, every agent-written part escaped", () => {
  assert.equal(requestText(request({})), "Which? [1. main | 2. next\\x1b[2J]");
  assert.equal(
    requestText(request({
      kind: "permission",
      body: { tool_name: "Bash", input: { command: "rm\n-rf" } },
    })),
    'Bash {"command":"rm\\n-rf"}',
  );
});

Deno.test("supervise: an answer must fit what was asked", () => {
  const q = request({});
  assert.equal(answerFor(q, { id: q.id, decision: "answer", text: "1" }).text, "main");
  assert.throws(
    () => answerFor(q, { id: q.id, decision: "answer", text: "dev" }),
    /one of the choices/,
  );
  assert.throws(() => answerFor(q, { id: q.id, decision: "approve" }), /is a question/);
  const a = request({ kind: "approval", body: { action: "x" } });
  assert.equal(answerFor(a, { id: a.id, decision: "deny", message: "no" }).message, "no");
  assert.throws(() => answerFor(a, { id: a.id, decision: "answer", text: "ok" }), /--approve/);
});
