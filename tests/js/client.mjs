// The npm openai client against a running `jevons serve`: node client.mjs BASE_URL
// Prints one JSON object with what the client saw; NodeClientTests.cs asserts on it.
import OpenAI from "openai";

const client = new OpenAI({ baseURL: process.argv[2], apiKey: "sk-node", maxRetries: 0 });
const messages = [{ role: "user", content: "what is one plus one?" }];
const out = {};

const models = await client.models.list();
out.models = models.data.map((m) => m.id);

const reply = await client.chat.completions.create({ model: "tiny", messages, max_tokens: 64 });
out.content = reply.choices[0].message.content;
out.reasoning = reply.choices[0].message.reasoning_content;
out.finish = reply.choices[0].finish_reason;
out.usage = reply.usage;

const stream = await client.chat.completions.create({ model: "tiny", messages, max_tokens: 64, stream: true, stream_options: { include_usage: true } });
out.streamed = { content: "", reasoning: "", finish: null, usage: null, chunks: 0 };
for await (const chunk of stream) {
  out.streamed.chunks++;
  if (chunk.usage) out.streamed.usage = chunk.usage;
  for (const c of chunk.choices) {
    out.streamed.content += c.delta.content ?? "";
    out.streamed.reasoning += c.delta.reasoning_content ?? "";
    if (c.finish_reason) out.streamed.finish = c.finish_reason;
  }
}

const schema = { type: "object", properties: { answer: { type: "integer" } }, required: ["answer"], additionalProperties: false };
const structured = await client.chat.completions.create({ model: "tiny", messages, max_tokens: 64, seed: 1,
  response_format: { type: "json_schema", json_schema: { name: "sum", strict: true, schema } } });
out.structured = { content: structured.choices[0].message.content, reasoning: structured.choices[0].message.reasoning_content };
out.structured.parsed = JSON.parse(out.structured.content);

try {
  await client.chat.completions.create({ model: "tiny", messages, temperature: 7 });
  out.error = null;
} catch (e) {
  out.error = { status: e.status, message: e.error?.message ?? e.message, param: e.param ?? e.error?.param };
}

console.log(JSON.stringify(out));
