import assert from "node:assert/strict";
import { it } from "node:test";
import { loadAdapter, runtime } from "./runtime.ts";

it(`the ${runtime} adapter serves a fetch app on 127.0.0.1 and closes`, async () => {
  const { serve } = await loadAdapter();
  const server = await serve({ fetch: () => new Response("pong") });
  try {
    assert.ok(server.port > 0);
    const response = await fetch(`http://127.0.0.1:${server.port}/ping`);
    assert.equal(await response.text(), "pong");
  } finally {
    await server.close();
  }
});
