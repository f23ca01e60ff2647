// The official openai SDK used as an agent would use it: the gateway token
// where the OpenAI key goes, the default base URL (https://api.openai.com/v1),
// no knowledge of the gateway. netns_test.go runs it inside a network
// namespace whose DNS is agw, with NODE_EXTRA_CA_CERTS naming agw's CA.
//
// Prints one JSON object per line: the plain call's "completion", then one
// "chunk" per streamed chunk as it arrives (with Date.now()), then "done".
// The stream is named by AGW_STREAM_NAME in the request's user field, so the
// fake backend can hold each chunk until the test has seen the one before.
import OpenAI from "openai";

const emit = (o) => process.stdout.write(JSON.stringify(o) + "\n");

const client = new OpenAI({ apiKey: process.env.AGW_TOKEN });

try {
  const completion = await client.chat.completions.create({
    model: "gpt-4o-mini",
    messages: [{ role: "user", content: "Say hello" }],
  });
  emit({ event: "completion", t: Date.now(), completion });

  const stream = await client.chat.completions.create({
    model: "gpt-4o-mini",
    messages: [{ role: "user", content: "Say hello" }],
    stream: true,
    user: process.env.AGW_STREAM_NAME,
  });
  let i = 0;
  for await (const chunk of stream) {
    emit({ event: "chunk", i: i++, t: Date.now(), chunk });
  }
  emit({ event: "done", i, t: Date.now() });
} catch (err) {
  emit({ event: "error", status: err.status ?? null, name: err.name, message: String(err.message) });
  process.exit(1);
}
