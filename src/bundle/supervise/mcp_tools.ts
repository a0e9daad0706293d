/**
 * The tools the agent is given, on the official MCP server SDK: it can ask
 * (`request_approval`, `ask_human`, and `permission_prompt`, which Claude
 * Code calls itself under `--permission-prompt-tool`), never list or answer
 * requests. Each call waits for the human (or the request's timeout) and
 * sends progress notifications meanwhile, for clients that keep a call
 * alive on them.
 */
import { McpServer } from "@modelcontextprotocol/server";
import { z } from "zod";
import { type Outcome, RequestRefused, type Supervisor } from "./supervisor.ts";
import type { RequestKind, SuperviseRequest } from "./queue_files.ts";
import { VERSION } from "../../version.ts";
import { TOOLS } from "./tool_names.ts";

const text = (max: number) => z.string().max(max);

/**
 * Text only: Claude Code shows the model a result's structuredContent in
 * place of its text when there is one, and the sentence says more.
 */
type ToolResult = { content: { type: "text"; text: string }[] };

export function superviseServer(sup: Supervisor): McpServer {
  const server = new McpServer({ name: "bottle-supervise", version: VERSION });
  type Ctx = Parameters<Parameters<typeof server.registerTool>[2]>[1];
  const wait = async (
    kind: RequestKind,
    body: SuperviseRequest["body"],
    ctx: Ctx,
  ): Promise<Outcome | { kind: "refused"; why: string }> => {
    const token = ctx.mcpReq._meta?.progressToken;
    try {
      return await sup.ask(kind, TOOLS[kind], body, ctx.mcpReq.signal, async (waited) => {
        if (token === undefined) return;
        await ctx.mcpReq.notify({
          method: "notifications/progress",
          params: {
            progressToken: token,
            progress: Math.round(waited / 1000),
            message: "waiting for the human's answer",
          },
        });
      });
    } catch (err) {
      if (err instanceof RequestRefused) return { kind: "refused", why: err.message };
      throw err;
    }
  };

  server.registerTool(TOOLS.approval, {
    title: "Ask the human to approve an action",
    description:
      "Ask the human who supervises this bottle to approve an action before you take it. " +
      "Waits for the answer: approved or denied, with the human's message. " +
      "If nobody answers in time the result says so: then do not take the action.",
    inputSchema: z.object({
      action: text(2_000).min(1).describe("What you want to do, in one line"),
      details: text(20_000).optional().describe("The exact command, diff or request"),
      why: text(4_000).optional().describe("Why it is needed"),
    }),
  }, async (args, ctx) => {
    const body = {
      action: args.action,
      ...(args.details !== undefined ? { details: args.details } : {}),
      ...(args.why !== undefined ? { why: args.why } : {}),
    };
    const o = await wait("approval", body, ctx);
    if (o.kind !== "answered") return noAnswer(o, "Do not take the action.");
    const approved = o.answer.decision === "approve";
    const said = o.answer.message ? `: ${o.answer.message}` : "";
    return {
      content: [{
        type: "text",
        text: `${approved ? "Approved" : "Denied"} by the human${said}`,
      }],
    };
  });

  server.registerTool(TOOLS.question, {
    title: "Ask the human a question",
    description: "Ask the human who supervises this bottle a question and wait for the answer. " +
      "Give choices when the answer is one of a few.",
    inputSchema: z.object({
      question: text(4_000).min(1),
      choices: z.array(text(500)).max(20).optional(),
    }),
  }, async (args, ctx) => {
    const o = await wait("question", {
      question: args.question,
      ...(args.choices?.length ? { choices: args.choices } : {}),
    }, ctx);
    if (o.kind !== "answered") return noAnswer(o, "Decide without the human's answer or stop.");
    const answer = o.answer.text ?? o.answer.message ?? "";
    return { content: [{ type: "text", text: answer }] };
  });

  // Claude Code's documented contract: the input is the tool it wants to run
  // and that tool's input; the result is one text block holding JSON,
  // {"behavior":"allow","updatedInput":{...}} or {"behavior":"deny","message":"..."}.
  server.registerTool(TOOLS.permission, {
    title: "Approve or deny a tool use (Claude Code's permission prompt)",
    description:
      "Used by Claude Code's --permission-prompt-tool: the human allows or denies each tool use.",
    inputSchema: z.object({
      tool_name: text(500).min(1),
      input: z.record(z.string(), z.unknown()),
      tool_use_id: text(500).optional(),
    }),
  }, async (args, ctx) => {
    const o = await wait("permission", {
      tool_name: args.tool_name,
      input: args.input,
      ...(args.tool_use_id !== undefined ? { tool_use_id: args.tool_use_id } : {}),
    }, ctx);
    const decision = o.kind === "answered" && o.answer.decision === "approve"
      ? { behavior: "allow", updatedInput: args.input }
      : {
        behavior: "deny",
        message: o.kind === "answered"
          ? `Denied by the human${o.answer.message ? `: ${o.answer.message}` : ""}`
          : noAnswerText(o),
      };
    return { content: [{ type: "text", text: JSON.stringify(decision) }] };
  });
  return server;
}

type Unanswered = Exclude<Outcome, { kind: "answered" }> | { kind: "refused"; why: string };

function noAnswerText(o: Unanswered): string {
  return o.kind === "timed-out"
    ? `No answer: the human did not answer within ${o.after}`
    : o.kind === "refused"
    ? `Not asked: ${o.why}`
    : "No answer: the request was abandoned";
}

function noAnswer(o: Unanswered, then: string): ToolResult {
  return { content: [{ type: "text", text: `${noAnswerText(o)}. ${then}` }] };
}
