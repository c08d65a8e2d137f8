/**
 * The guide's examples run, on the runtime running the tests, as the reader would run them: each
 * file in docs/guide/examples/ in its own process. Each chapter shows its example verbatim, so
 * what the reader sees is what ran.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";
import { runtime, scriptCommand } from "../helpers/runtime.ts";

const root = fileURLToPath(new URL("../../", import.meta.url));
const examples = `${root}docs/guide/examples/`;
const guide = `${root}docs/guide/`;

/** Runs an example to its end; rejects with its output if it fails or runs over `timeoutMs`. */
function runExample(file: string, timeoutMs = 60_000): Promise<string> {
  return runScript(`${examples}${file}`, timeoutMs);
}

/** Runs the script at `path` from the repository's root; resolves with what it printed. */
function runScript(path: string, timeoutMs = 60_000): Promise<string> {
  const file = path.slice(path.lastIndexOf("/") + 1);
  const { command, args } = scriptCommand(path);
  // Deno looks for deno.json from the script's folder up: one outside the checkout must name it.
  if (runtime === "deno") args.splice(args.length - 1, 0, "--config", `${root}deno.json`);
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => {
      stdout += chunk;
    });
    child.stderr.on("data", (chunk) => {
      stderr += chunk;
    });
    // A bound on a hung example, not a synchronisation: the exit is what the test waits for.
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(stdout);
      else reject(new Error(`${file} exited with ${code ?? signal}\n${stdout}\n${stderr}`));
    });
  });
}

/** Asserts that `output` has a line matching each pattern, in this order. */
function assertLines(output: string, patterns: readonly RegExp[]): void {
  const lines = output.split("\n");
  let at = 0;
  for (const pattern of patterns) {
    const found = lines.findIndex((line, i) => i >= at && pattern.test(line));
    assert.ok(found >= 0, `no line matching ${pattern} (in order) in:\n${output}`);
    at = found + 1;
  }
}

/** Which chapter shows which example, and what a run must print. */
const chapters: { chapter: string; example: string; expect: RegExp[] }[] = [
  {
    chapter: "01-getting-started.md",
    example: "getting-started.ts",
    expect: [
      /^leader: n[123]$/,
      /^add 1: total 1 at index \d+$/,
      /^add 2: total 3 at index \d+$/,
      /^add 3: total 6 at index \d+$/,
      /^read on the leader: 6$/,
      /^n1: total 6$/,
      /^n2: total 6$/,
      /^n3: total 6$/,
    ],
  },
  {
    chapter: "02-state-machine.md",
    example: "state-machine.ts",
    expect: [
      /^set color=red: ok$/,
      /^cas red->blue: ok$/,
      /^cas red->green: refused: color is blue$/,
      /^delete color: true$/,
      /^set size=XL: ok$/,
      /^a: applied (\d+), data \{"size":"XL"\}$/,
      /^b: applied (\d+), data \{"size":"XL"\}$/,
      /^c: applied (\d+), data \{"size":"XL"\}$/,
    ],
  },
  {
    chapter: "03-storage.md",
    example: "storage.ts",
    expect: [
      /^term 1, last index \d+, journal: first, second$/,
      /^term [2-9]\d*, last index \d+, journal: first, second, third$/,
    ],
  },
  {
    chapter: "03-storage.md",
    example: "map-log-store.ts",
    expect: [], // a module: test/docs/log-store-contract.test.ts runs the contract against it
  },
  {
    chapter: "04-network.md",
    example: "network.ts",
    expect: [
      /^leader n[123] committed index \d+ over HTTP$/,
      /^GET \/health: \{"id":"n[123]","role":"leader"\}$/,
      /^a vote request without the secret: 401$/,
      /^the forged term 99 never reached it: true$/,
    ],
  },
  {
    chapter: "05-membership.md",
    example: "membership.ts",
    expect: [
      /^n1 leads: voters \[n1\], learners \[\]$/,
      /^learner added: voters \[n1\], learners \[n2\]$/,
      /^voters changed at index \d+: voters \[n1,n2,n3\], learners \[\]$/,
      /^leadership moved to n2$/,
      /^n2 removed itself, n[13] leads: voters \[n1,n3\], learners \[\]$/,
      /^write committed at index \d+$/,
    ],
  },
  {
    chapter: "06-reads-writes.md",
    example: "reads-writes.ts",
    expect: [
      /^c1#1 add 5: 5 \(from n[123]\)$/,
      /^c1#2 add 3: 8 \(from n[123]\)$/,
      /^c1#2 again: 8 \(from n[123]\)$/,
      /^linearizable read: 8$/,
      /^read on a follower: NotLeaderError$/,
    ],
  },
  {
    chapter: "08-pure-core.md",
    example: "minimal-driver.ts",
    expect: [
      /^t=\d+ms n[123] leads term \d+$/,
      /^t=\d+ms proposal 1 appended at index \d+$/,
      /^n1: term \d+, commit \d+, log \d+, applied x=1 y=2 z=3$/,
      /^n2: term \d+, commit \d+, log \d+, applied x=1 y=2 z=3$/,
      /^n3: term \d+, commit \d+, log \d+, applied x=1 y=2 z=3$/,
    ],
  },
  {
    chapter: "09-operations.md",
    example: "operations.ts",
    expect: [
      /^leader n[123]: term \d+, commit \d+$/,
      /^ALERT n[123] stopped: log store write failed$/,
      /^n[123] stopped: true, stopped=true$/,
      /^the cluster still commits: index \d+$/,
    ],
  },
];

describe("the guide's examples", () => {
  for (const { chapter, example, expect } of chapters) {
    it(`${chapter} shows ${example} verbatim`, () => {
      const text = readFileSync(`${guide}${chapter}`, "utf8");
      const code = readFileSync(`${examples}${example}`, "utf8");
      assert.ok(
        text.includes(`\`\`\`ts\n${code}\`\`\``),
        `${chapter} must include docs/guide/examples/${example} in a ts code block, unchanged`,
      );
    });
    if (expect.length > 0) {
      it(`${example} runs and prints what the chapter says`, async () => {
        assertLines(await runExample(example), expect);
      });
    }
  }

  it("every example belongs to a chapter", () => {
    const shown = new Set(chapters.map((c) => c.example));
    const files = readdirSync(examples).filter((f) => f.endsWith(".ts"));
    assert.deepEqual(
      files.filter((f) => !shown.has(f)),
      [],
    );
  });

  it("the README's 30-second example runs and commits", async () => {
    const readme = readFileSync(`${root}README.md`, "utf8");
    const code = /<!-- readme-example -->\n```ts\n([\s\S]*?)```/.exec(readme)?.[1];
    assert.ok(code, "README.md: no ts block after <!-- readme-example -->");
    // It imports "keel" as a user would; here that is this checkout's mod.ts.
    assert.match(code, /from "keel";/);
    const dir = mkdtempSync(join(tmpdir(), "keel-readme-"));
    try {
      const file = join(dir, "readme.mts"); // .mts: an ES module wherever it lies
      writeFileSync(file, code.replace('from "keel";', `from ${JSON.stringify(`${root}mod.ts`)};`));
      const output = await runScript(file);
      assert.match(output, /^committed at index \d+; n[123] applied: hello, raft$/m);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("every relative link of the guide and the README points to a file that exists", () => {
    const pages = [
      ...readdirSync(guide)
        .filter((f) => f.endsWith(".md"))
        .map((f) => `${guide}${f}`),
      `${root}README.md`,
    ];
    // Written by the cluster benchmark (bench/), which may not have run in this checkout.
    const generated = new Set([`${root}docs/bench-cluster.svg`]);
    const broken: string[] = [];
    for (const page of pages) {
      const text = readFileSync(page, "utf8");
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (target === undefined || /^[a-z]+:/.test(target) || target.startsWith("#")) continue;
        const file = new URL(target.split("#")[0] ?? "", pathToFileURL(page));
        if (!generated.has(fileURLToPath(file)) && !existsSync(file)) {
          broken.push(`${page.slice(root.length)}: ${target}`);
        }
      }
    }
    assert.deepEqual(broken, []);
  });

  it("the minimal driver of chapter 8 is under 150 lines", () => {
    const lines = readFileSync(`${examples}minimal-driver.ts`, "utf8").trimEnd().split("\n");
    assert.ok(lines.length < 150, `${lines.length} lines`);
  });

  it("the minimal driver is deterministic: two runs print the same", async () => {
    assert.equal(await runExample("minimal-driver.ts"), await runExample("minimal-driver.ts"));
  });
});
