// The Node `openai` SDK against the sidecar: `responses.create` and `responses.stream`
// (with `finalResponse()`), through a failover and across a crossing to Anthropic. Real
// `switchyard mock` and `switchyard run` processes on 127.0.0.1 ephemeral ports.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { writeFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";

const BIN = process.env.SWITCHYARD_BIN;
const children = [];

/** Starts the binary and resolves with the addresses of its first line naming `marker`. */
function start(args, marker, env = {}) {
  const child = spawn(BIN, args, { env: { ...process.env, RUST_LOG: "info", ...env } });
  children.push(child);
  return new Promise((resolve, reject) => {
    let log = "";
    child.stderr.on("data", (chunk) => {
      log += chunk;
      const line = log.split("\n").find((l) => l.includes(marker));
      if (line) resolve(line.match(/127\.0\.0\.1:\d+/g));
    });
    child.on("exit", () => reject(new Error(`${args[0]} exited:\n${log}`)));
  });
}

after(() => children.forEach((c) => c.kill()));

async function setup() {
  const [p] = await start(["mock", "--listen", "127.0.0.1:0", "--name", "primary"], "listening");
  const [s] = await start(["mock", "--listen", "127.0.0.1:0", "--name", "secondary"], "listening");
  const policy = `
providers:
  - {name: primary, api: openai, baseUrl: "http://${p}/v1", wires: [chat, embeddings, responses], auth: {apiKey: {fromEnv: SDK_TEST_KEY}}}
  - {name: secondary, api: openai, baseUrl: "http://${s}/v1", wires: [chat, embeddings, responses], auth: {apiKey: {fromEnv: SDK_TEST_KEY}}}
  - {name: claude-backup, api: anthropic, baseUrl: "http://${s}", auth: {apiKey: {fromEnv: SDK_TEST_KEY}}}
routes:
  - model: gpt-4o
    targets: [{provider: primary, model: gpt-4o}, {provider: secondary, model: gpt-4o-mini}]
  - model: resp-claude
    targets: [{provider: primary, model: gpt-4o}, {provider: claude-backup, model: claude-haiku-4-5}]
`;
  const file = join(mkdtempSync(join(tmpdir(), "switchyard-")), "policy.yaml");
  writeFileSync(file, policy);
  const [listen] = await start(
    ["run", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--policy-file", file],
    "switchyard is serving",
    { SDK_TEST_KEY: "sk-sidecar-secret" },
  );
  await fetch(`http://${p}/_mock/faults`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ errorRate: 1.0 }),
  });
  return new OpenAI({ baseURL: `http://${listen}/v1`, apiKey: "sk-app-key", maxRetries: 0 });
}

for (const [model, provider] of [["gpt-4o", "secondary"], ["resp-claude", "claude-backup"]]) {
  test(`responses through a failover to ${provider}`, async () => {
    const client = await setup();
    const { data, response } = await client.responses
      .create({ model, input: "hello" })
      .withResponse();
    assert.equal(response.headers.get("x-switchyard-provider"), provider);
    assert.equal(data.output_text, "Hello from mock secondary");
    const stream = client.responses.stream({ model, input: "hello" });
    let text = "";
    for await (const event of stream) {
      if (event.type === "response.output_text.delta") text += event.delta;
    }
    const final = await stream.finalResponse();
    assert.equal(text, "Hello from mock secondary");
    // The Node SDK's streamed final response leaves `output_text` to the caller.
    const message = final.output.find((item) => item.type === "message");
    assert.equal(message.content[0].text, "Hello from mock secondary");
    assert.equal(final.status, "completed");
    assert.ok(final.id.startsWith("resp_"));
  });
}
