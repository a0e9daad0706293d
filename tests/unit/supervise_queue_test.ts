/**
 * The supervise queue's races and limits, on a real directory: the answer
 * slot is first-wins for the human and the daemon alike, ids are never
 * reused, a request file's body is checked before anything shows it.
 */
import assert from "node:assert/strict";
import { AuditLog } from "../../src/bundle/audit_log.ts";
import {
  createRequest,
  ID_PATTERN,
  newRequestId,
  parseQueueFiles,
  parseRequest,
  pruneClosed,
  readQueueDir,
  type SuperviseAnswer,
  type SuperviseRequest,
  writeAnswer,
  writeClosedMarker,
} from "../../src/bundle/supervise/queue_files.ts";
import {
  MAX_BODY_BYTES,
  MAX_PENDING,
  RequestRefused,
  Supervisor,
} from "../../src/bundle/supervise/supervisor.ts";

async function withQueue(fn: (dir: string, audit: AuditLog) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "supervise-queue-" });
  const audit = await AuditLog.open(`${dir}/audit.jsonl`, "b1");
  try {
    await fn(`${dir}`, audit);
  } finally {
    audit.close();
    await Deno.remove(dir, { recursive: true });
  }
}

function request(id: string, over: Partial<SuperviseRequest> = {}): SuperviseRequest {
  return {
    v: 1,
    id,
    bottle: "b1",
    kind: "approval",
    tool: "request_approval",
    createdAt: new Date().toISOString(),
    expiresAt: new Date(Date.now() + 60_000).toISOString(),
    body: { action: "tag v2" },
    state: "pending",
    ...over,
  };
}

function answer(id: string): SuperviseAnswer {
  return { id, decision: "approve", answeredAt: new Date().toISOString(), by: "me@here" };
}

/** Waits until the daemon has written a pending request, and returns it. */
async function pendingIn(dir: string): Promise<SuperviseRequest> {
  for (let i = 0; i < 200; i++) {
    const r = (await readQueueDir(dir)).find((r) => r.state === "pending");
    if (r) return r;
    await new Promise((res) => setTimeout(res, 10));
  }
  throw new Error("no pending request appeared");
}

Deno.test("supervise queue: ids are 64 random bits", () => {
  const ids = new Set(Array.from({ length: 1000 }, newRequestId));
  assert.equal(ids.size, 1000);
  for (const id of ids) assert.match(id, ID_PATTERN);
  assert.match("0123456789abcdef", ID_PATTERN);
  assert.doesNotMatch("01234567", ID_PATTERN);
});

Deno.test("supervise queue: a new request never replaces a file of its id, or the answer beside it", async () => {
  await withQueue(async (dir) => {
    const id = newRequestId();
    assert.equal(await createRequest(dir, request(id)), true);
    assert.equal(await writeAnswer(dir, answer(id)), true);
    assert.equal(await createRequest(dir, request(id, { body: { action: "other" } })), false);
    const [r] = await readQueueDir(dir);
    assert.deepEqual(r!.body, { action: "tag v2" });
    assert.equal(r!.answer?.decision, "approve");
  });
});

Deno.test("supervise queue: a request that timed out takes its answer slot: a late answer is refused", async () => {
  await withQueue(async (dir, audit) => {
    const sup = new Supervisor(dir, "b1", 300, audit);
    const outcome = await sup.ask(
      "approval",
      "request_approval",
      { action: "deploy" },
      new AbortController().signal,
    );
    assert.equal(outcome.kind, "timed-out");
    const [r] = await readQueueDir(dir);
    assert.equal(r!.state, "timed-out");
    assert.equal(await writeAnswer(dir, answer(r!.id)), false, "a late answer was taken");
  });
});

Deno.test("supervise queue: an answer that took the slot first stands, even as the time runs out", async () => {
  await withQueue(async (dir, audit) => {
    const sup = new Supervisor(dir, "b1", 60_000, audit);
    const ctl = new AbortController();
    const asking = sup.ask("approval", "request_approval", { action: "deploy" }, ctl.signal);
    const r = await pendingIn(dir);
    // The answer lands, and the agent goes away, in the same instant.
    assert.equal(await writeAnswer(dir, answer(r.id)), true);
    ctl.abort();
    const outcome = await asking;
    assert.equal(outcome.kind, "answered");
    assert.equal((await readQueueDir(dir))[0]!.state, "answered");
  });
});

Deno.test("supervise queue: between the marker and the daemon's rewrite, readers already see the end", () => {
  const id = newRequestId();
  const files = new Map([
    [`${id}.json`, JSON.stringify(request(id))],
    [`${id}.answer.json`, JSON.stringify({ id, closed: "timed-out" })],
  ]);
  const [r] = parseQueueFiles(files);
  assert.equal(r!.state, "timed-out");
  assert.equal(r!.answer, undefined);
});

Deno.test("supervise queue: too large a request, or too many waiting, is refused before the human sees it", async () => {
  await withQueue(async (dir, audit) => {
    const sup = new Supervisor(dir, "b1", 60_000, audit);
    const signal = new AbortController().signal;
    await assert.rejects(
      sup.ask("approval", "request_approval", { action: "x".repeat(MAX_BODY_BYTES) }, signal),
      RequestRefused,
    );
    assert.deepEqual(await readQueueDir(dir), []);
    const ctl = new AbortController();
    const waiting = Array.from(
      { length: MAX_PENDING },
      (_, i) => sup.ask("question", "ask_human", { question: `q${i}` }, ctl.signal),
    );
    while ((await readQueueDir(dir)).length < MAX_PENDING) {
      await new Promise((r) => setTimeout(r, 10));
    }
    await assert.rejects(
      sup.ask("question", "ask_human", { question: "one more" }, signal),
      /32 requests are already waiting/,
    );
    ctl.abort();
    const outcomes = await Promise.all(waiting);
    assert.ok(outcomes.every((o) => o.kind === "abandoned"));
    // Once they ended, asking works again.
    const again = new AbortController();
    const more = sup.ask("question", "ask_human", { question: "again" }, again.signal);
    await pendingIn(dir);
    again.abort();
    assert.equal((await more).kind, "abandoned");
  });
});

Deno.test("supervise queue: closed requests are pruned beyond the kept number, pending ones never", async () => {
  await withQueue(async (dir) => {
    const t0 = Date.parse("2026-01-01T00:00:00Z");
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const id = newRequestId();
      ids.push(id);
      const at = new Date(t0 + i * 1000).toISOString();
      await createRequest(
        dir,
        request(id, { createdAt: at, state: i === 0 ? "pending" : "answered" }),
      );
      if (i > 0) await writeAnswer(dir, answer(id));
    }
    assert.equal(await pruneClosed(dir, 2), 3);
    const left = (await readQueueDir(dir)).map((r) => r.id);
    assert.deepEqual(left, [ids[0], ids[4], ids[5]]);
    const names = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.includes(ids[1]!));
    assert.deepEqual(names, [], "a pruned request left its answer behind");
  });
});

Deno.test("supervise queue: a request file whose body does not fit its kind is skipped", () => {
  const id = newRequestId();
  const bad: unknown[] = [
    { kind: "question", body: { question: "q", choices: "not a list" } },
    { kind: "question", body: { question: "q", choices: [1, 2] } },
    { kind: "approval", body: { action: 5 } },
    { kind: "approval", body: { action: "a", details: { x: 1 } } },
    { kind: "permission", body: { tool_name: "Bash", input: [] } },
    { kind: "permission", body: { tool_name: "Bash" } },
    { kind: "approval", body: { action: "a" }, tool: 7 },
  ];
  for (const over of bad) {
    const text = JSON.stringify({ ...request(id), ...(over as object) });
    assert.equal(parseRequest(text), undefined, text);
  }
  assert.ok(parseRequest(JSON.stringify(request(id))));
});

Deno.test("supervise queue: the daemon's marker and an answer exclude each other", async () => {
  await withQueue(async (dir) => {
    const id = newRequestId();
    assert.equal(await writeClosedMarker(dir, { id, closed: "abandoned" }), true);
    assert.equal(await writeAnswer(dir, answer(id)), false);
  });
});
