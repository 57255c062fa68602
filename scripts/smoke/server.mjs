// A minimal OpenAI-compatible chat server over node-llama-cpp, for the real-model smoke tier.
//
// node-llama-cpp ships a prebuilt llama.cpp on npm but no HTTP server; litellm (and so codeact)
// talks to local models over the OpenAI chat API. This file is that bridge and nothing more:
// POST /v1/chat/completions (plain and streamed, with usage), GET /v1/models, GET /health.
// One request is answered at a time (one context sequence): llama.cpp on a small machine is
// fastest when nothing competes for its threads, and the smoke tier never needs parallelism.
//
// Usage: node server.mjs --model FILE.gguf [--port 0] [--threads N] [--alias NAME] [--ctx 4096]
// Prints one JSON line {"port": P, "alias": NAME, "threads": N} on stdout when it is ready.
import http from "node:http";
import os from "node:os";
import { getLlama, LlamaChatSession } from "node-llama-cpp";

function parseArgs(argv) {
  const out = { port: 0, threads: 0, alias: "smollm2", ctx: 4096, model: "" };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, "");
    if (!(key in out)) throw new Error(`unknown option --${key}`);
    out[key] = typeof out[key] === "number" ? Number(argv[i + 1]) : argv[i + 1];
  }
  if (!out.model) throw new Error("--model FILE.gguf is required");
  // llama.cpp collapses when its threads outnumber the cores: default to exactly the cores
  if (!out.threads) out.threads = os.availableParallelism?.() ?? os.cpus().length;
  return out;
}

const opts = parseArgs(process.argv.slice(2));
const llama = await getLlama({ gpu: false, build: "never", maxThreads: opts.threads, logLevel: "error" });
const model = await llama.loadModel({ modelPath: opts.model });
const context = await model.createContext({ contextSize: opts.ctx, sequences: 1, threads: opts.threads });
const sequence = context.getSequence();

let queue = Promise.resolve();
function serialised(fn) {
  const next = queue.then(fn, fn);
  queue = next.catch(() => {});
  return next;
}

function text(content) {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) return content.map((p) => (typeof p === "string" ? p : p?.text ?? "")).join("");
  return content == null ? "" : String(content);
}

// OpenAI messages -> node-llama-cpp chat history, with the last user turn split off as the prompt
function toHistory(messages) {
  const history = [];
  for (const m of messages) {
    const body = text(m.content);
    if (m.role === "system" || m.role === "developer") history.push({ type: "system", text: body });
    else if (m.role === "assistant") history.push({ type: "model", response: [body] });
    else history.push({ type: "user", text: body });
  }
  let prompt = "";
  if (history.length && history[history.length - 1].type === "user") prompt = history.pop().text;
  return { history, prompt };
}

async function generate(req, onText, signal) {
  const { history, prompt } = toHistory(req.messages ?? []);
  const session = new LlamaChatSession({ contextSequence: sequence, autoDisposeSequence: false });
  try {
    session.setChatHistory(history);
    const outBefore = sequence.tokenMeter.usedOutputTokens;
    const stop = req.stop == null ? [] : Array.isArray(req.stop) ? req.stop : [req.stop];
    const result = await session.promptWithMeta(prompt, {
      maxTokens: Number(req.max_tokens ?? req.max_completion_tokens ?? 512),
      temperature: Number(req.temperature ?? 0),
      topP: req.top_p == null ? undefined : Number(req.top_p),
      seed: req.seed == null ? undefined : Number(req.seed),
      customStopTriggers: stop.length ? stop : undefined,
      onTextChunk: onText,
      signal,
      stopOnAbortSignal: true,
    });
    const completion = sequence.tokenMeter.usedOutputTokens - outBefore;
    const promptTokens = Math.max(0, sequence.contextTokens.length - completion);
    return {
      content: result.responseText,
      finish: result.stopReason === "maxTokens" ? "length" : "stop",
      usage: { prompt_tokens: promptTokens, completion_tokens: completion, total_tokens: promptTokens + completion },
    };
  } finally {
    session.dispose({ disposeSequence: false });
  }
}

function send(res, status, body) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

async function chat(req, res, body) {
  const id = `chatcmpl-${Date.now().toString(36)}`;
  const created = Math.floor(Date.now() / 1000);
  const abort = new AbortController();
  res.on("close", () => abort.abort());
  if (!body.stream) {
    const out = await serialised(() => generate(body, undefined, abort.signal));
    send(res, 200, {
      id, object: "chat.completion", created, model: opts.alias,
      choices: [{ index: 0, message: { role: "assistant", content: out.content }, finish_reason: out.finish }],
      usage: out.usage,
    });
    return;
  }
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
  const chunk = (choices, extra = {}) =>
    res.write(`data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model: opts.alias, choices, ...extra })}\n\n`);
  chunk([{ index: 0, delta: { role: "assistant", content: "" }, finish_reason: null }]);
  const out = await serialised(() =>
    generate(body, (t) => chunk([{ index: 0, delta: { content: t }, finish_reason: null }]), abort.signal),
  );
  chunk([{ index: 0, delta: {}, finish_reason: out.finish }]);
  if (body.stream_options?.include_usage) chunk([], { usage: out.usage });
  res.end("data: [DONE]\n\n");
}

const server = http.createServer((req, res) => {
  if (req.method === "GET" && (req.url === "/health" || req.url === "/v1/health")) return send(res, 200, { ok: true });
  if (req.method === "GET" && req.url === "/v1/models") {
    return send(res, 200, { object: "list", data: [{ id: opts.alias, object: "model", owned_by: "local" }] });
  }
  if (req.method !== "POST" || !req.url.endsWith("/chat/completions")) {
    return send(res, 404, { error: { message: `no route ${req.method} ${req.url}`, type: "not_found" } });
  }
  let raw = "";
  req.setEncoding("utf8");
  req.on("data", (d) => (raw += d));
  req.on("end", () => {
    let body;
    try {
      body = JSON.parse(raw || "{}");
    } catch (err) {
      return send(res, 400, { error: { message: `bad JSON: ${err.message}`, type: "invalid_request_error" } });
    }
    chat(req, res, body).catch((err) => {
      if (res.headersSent) res.end();
      else send(res, 500, { error: { message: String(err?.message ?? err), type: "server_error" } });
    });
  });
});

server.listen(opts.port, "127.0.0.1", () => {
  const { port } = server.address();
  process.stdout.write(`${JSON.stringify({ port, alias: opts.alias, threads: opts.threads })}\n`);
});
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => process.exit(0));
