/**
 * The client-side CPU of one peer RPC on Node, back to back and spaced out (one every
 * `--gap-ms`, like a one-connection load or the heartbeats), for a plain `node:http` request,
 * `createNodeFetch` and `FetchNetwork.send` on it. The peer is a plain `node:http` server in a
 * child process answering a heartbeatResponse, so only the client's side is measured. See
 * bench/README.md ("CPU per write at one connection") for what it showed.
 *
 *   npx tsx bench/rpc-cost.ts [--calls 2000] [--gap-ms 20] [--seconds 3] [--rounds 2]
 */
import { spawn } from "node:child_process";
import { Agent, createServer, request } from "node:http";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { createNodeFetch } from "../adapters/node.ts";
import type { NodeId } from "../src/core/types.ts";
import { FetchNetwork } from "../src/net/fetch.ts";

const HOST = "127.0.0.1";
const ANSWER = '{"type":"heartbeatResponse","term":1,"from":"n2","to":"n1","round":0}';
const HEARTBEAT = { type: "heartbeat", term: 1, from: "n1", to: "n2", leaderCommit: 5, round: 0 };

const { values } = parseArgs({
  options: {
    serve: { type: "boolean", default: false },
    calls: { type: "string", default: "2000" },
    "gap-ms": { type: "string", default: "20" },
    seconds: { type: "string", default: "3" },
    rounds: { type: "string", default: "2" },
  },
});

if (values.serve) {
  const server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(ANSWER);
    });
  });
  server.listen(0, HOST, () => {
    const address = server.address();
    process.stdout.write(`${typeof address === "object" && address ? address.port : 0}\n`);
  });
} else {
  await measure();
}

async function measure(): Promise<void> {
  const calls = Number(values.calls);
  const gapMs = Number(values["gap-ms"]);
  const seconds = Number(values.seconds);
  const rounds = Number(values.rounds);
  const child = spawn(
    process.execPath,
    [...process.execArgv, fileURLToPath(import.meta.url), "--serve"],
    {
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  const port = await new Promise<number>((resolve) =>
    child.stdout?.once("data", (d) => resolve(Number(String(d).trim()))),
  );
  const base = `http://${HOST}:${port}`;
  const body = JSON.stringify(HEARTBEAT);
  const agent = new Agent({ keepAlive: true });
  const plain = () =>
    new Promise<void>((resolve, reject) => {
      const req = request(
        `${base}/raft/heartbeat`,
        { method: "POST", agent, headers: { "content-type": "application/json" } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (d: Buffer) => chunks.push(d));
          res.on("end", () => {
            JSON.parse(Buffer.concat(chunks).toString());
            resolve();
          });
        },
      );
      req.on("error", reject);
      req.end(body);
    });
  const nodeFetch = createNodeFetch();
  const viaFetch = async () => {
    const response = await nodeFetch(`${base}/raft/heartbeat`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    });
    JSON.parse(new TextDecoder().decode(await response.arrayBuffer()));
  };
  const network = new FetchNetwork({ fetch: nodeFetch });
  const viaNetwork = async () => {
    await network.send("n2" as NodeId, base, HEARTBEAT as never, 2000);
  };
  // The control: no RPC, only the timer's wake-up (its cost is in every spaced figure).
  const variants: [string, () => Promise<void>][] = [
    ["no RPC (control)", async () => {}],
    ["node:http", plain],
    ["createNodeFetch", viaFetch],
    ["FetchNetwork", viaNetwork],
  ];
  const cpu = () => {
    const u = process.cpuUsage();
    return u.user + u.system;
  };
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  console.log(`client CPU per RPC (µs), back to back and one every ${gapMs} ms`);
  for (let round = 1; round <= rounds; round++) {
    for (const [name, call] of variants) {
      for (let i = 0; i < 300; i++) await call();
      let start = cpu();
      for (let i = 0; i < calls; i++) await call();
      const hot = (cpu() - start) / calls;
      start = cpu();
      let n = 0;
      const end = performance.now() + seconds * 1000;
      while (performance.now() < end) {
        await call();
        n++;
        await sleep(gapMs);
      }
      const spaced = (cpu() - start) / n;
      console.log(
        `round ${round}  ${name.padEnd(16)} back to back ${hot.toFixed(0).padStart(5)}   spaced ${spaced.toFixed(0).padStart(5)}  (${n} calls)`,
      );
    }
  }
  network.close();
  nodeFetch.close();
  child.kill();
}
