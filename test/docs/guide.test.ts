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

/**
 * Runs the script at `path` (with `scriptArgs`) from the repository's root; resolves with what
 * it printed.
 */
function runScript(
  path: string,
  timeoutMs = 60_000,
  scriptArgs: readonly string[] = [],
): Promise<string> {
  const file = path.slice(path.lastIndexOf("/") + 1);
  const { command, args } = scriptCommand(path);
  // Deno looks for deno.json from the script's folder up: one outside the checkout must name it.
  if (runtime === "deno") args.splice(args.length - 1, 0, "--config", `${root}deno.json`);
  args.push(...scriptArgs);
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

/**
 * What chapter 7 says of its example's output, whatever the indexes (a busy machine may add an
 * election's blank entry): the policy compacted every log, triggerSnapshot took what was
 * committed and kept 10 entries before it, n4 was caught up by that snapshot in several chunks
 * and holds only the entries after it, and the restarted node replayed the log after it.
 */
function checkSnapshots(output: string): void {
  const numbers = (pattern: RegExp) => {
    const match = pattern.exec(output);
    assert.ok(match, `no line matching ${pattern} in:\n${output}`);
    return match.slice(1).map(Number);
  };
  const [commit = 0] = numbers(/^leader n[123] committed 300 keys, up to index (\d+)$/m);
  assert.ok(commit >= 302, `300 writes, a membership entry and a blank one: ${commit}`);
  for (const id of ["n1", "n2", "n3"]) {
    const [policy = 0, first = 0, last] = numbers(
      new RegExp(`^${id}: snapshot at (\\d+), log from (\\d+) to (\\d+)$`, "m"),
    );
    assert.ok(policy >= 100 && policy <= commit, `${id}: a policy snapshot, at ${policy}`);
    assert.equal(first, Math.max(1, policy - 10 + 1), `${id}: 10 trailing entries kept`);
    assert.equal(last, commit);
    assert.deepEqual(
      numbers(
        new RegExp(
          `^${id}: triggerSnapshot\\(\\) took (\\d+); snapshot at (\\d+), log from (\\d+) to (\\d+)$`,
          "m",
        ),
      ),
      [commit, commit, commit - 9, commit],
    );
  }
  const [installed, bytes = 0, chunks = 0] = numbers(
    /^n4 restored the snapshot at (\d+): (\d+) bytes in (\d+) chunks$/m,
  );
  assert.equal(installed, commit);
  // 4 KiB chunks, and the opening empty one.
  assert.ok(chunks >= Math.ceil(bytes / 4096) + 1, `${bytes} bytes in ${chunks} chunks`);
  const [snapshot, from = 0, to = 0] = numbers(/^n4: snapshot at (\d+), log from (\d+) to (\d+)$/m);
  assert.deepEqual([snapshot, from], [commit, commit + 1]);
  assert.ok(to >= commit + 4, `the membership change and a write follow: ${to}`);
  const [restored, replayed] = numbers(/^n[123] restarted: restored (\d+), replayed to (\d+),/m);
  assert.deepEqual([restored, replayed], [commit, to]);
}

/** Which chapter shows which example, what a run must print, and what else must hold of it. */
const chapters: {
  chapter: string;
  example: string;
  expect: RegExp[];
  check?: (output: string) => void;
}[] = [
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
    chapter: "07-snapshots.md",
    example: "snapshots.ts",
    expect: [
      /^leader n[123] committed 300 keys, up to index \d+$/,
      /^n1: snapshot at \d+, log from \d+ to \d+$/,
      /^n2: snapshot at \d+, log from \d+ to \d+$/,
      /^n3: snapshot at \d+, log from \d+ to \d+$/,
      /^n1: triggerSnapshot\(\) took \d+; snapshot at \d+, log from \d+ to \d+$/,
      /^n2: triggerSnapshot\(\) took \d+; snapshot at \d+, log from \d+ to \d+$/,
      /^n3: triggerSnapshot\(\) took \d+; snapshot at \d+, log from \d+ to \d+$/,
      /^n4 restored the snapshot at \d+: \d+ bytes in \d+ chunks$/,
      /^n4: snapshot at \d+, log from \d+ to \d+$/,
      /^n4 holds 301 keys, the leader's state: true$/,
      /^n[123] restarted: restored \d+, replayed to \d+, the leader's state: true$/,
    ],
    check: checkSnapshots,
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
  for (const { chapter, example, expect, check } of chapters) {
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
        const output = await runExample(example);
        assertLines(output, expect);
        check?.(output);
      });
    }
  }

  it("an excerpt of an example (<!-- excerpt: file.ts -->) is in that example, unchanged", () => {
    let excerpts = 0;
    for (const page of readdirSync(guide).filter((f) => f.endsWith(".md"))) {
      const text = readFileSync(`${guide}${page}`, "utf8");
      for (const [, file, code] of text.matchAll(
        /<!-- excerpt: ([\w.-]+) -->\n```ts\n([\s\S]*?)```/g,
      )) {
        excerpts++;
        assert.ok(
          readFileSync(`${examples}${file}`, "utf8").includes(code as string),
          `${page}: the excerpt of ${file} differs from docs/guide/examples/${file}`,
        );
      }
    }
    assert.ok(excerpts > 0, "no excerpt found: chapter 2 shows the snapshot methods of chapter 7");
  });

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

  it("chapter 10's benchmark command runs and prints the table the chapter shows", async () => {
    const text = readFileSync(`${guide}10-benchmarks.md`, "utf8");
    const line = /<!-- bench-command -->\n```sh\n(.*)\n```/.exec(text)?.[1];
    assert.ok(line, "10-benchmarks.md: no sh block after <!-- bench-command -->");
    const [npx, tsx, script, ...args] = line.split(" ");
    assert.deepEqual([npx, tsx, script], ["npx", "tsx", "bench/core.ts"]);
    // The chapter's command on this runtime, writing its JSON aside rather than into bench/.
    const dir = mkdtempSync(join(tmpdir(), "keel-bench-"));
    try {
      const out = join(dir, "core.json");
      const at = args.indexOf("--out");
      assert.ok(at >= 0, "the command names its --out");
      args[at + 1] = out;
      const output = await runScript(`${root}bench/core.ts`, 60_000, args);
      assertLines(output, [
        new RegExp(`^core bench on ${runtime} `),
        /^batch {2}entries\/s {2}proposals\/s {2}steps\/entry {2}msgs\/entry$/,
        // One entry per proposal: about 11 steps and 4 messages per entry, as the chapter says.
        /^ +1 +[\d,]+ +[\d,]+ +1[01]\.\d{3} +(3\.9|4\.0)\d\d$/,
        /^ +256 +[\d,]+ +[\d,]+ +0\.04\d +0\.01\d$/,
      ]);
      const report = JSON.parse(readFileSync(out, "utf8")) as {
        results: { batchSize: number; entries: number }[];
      };
      assert.deepEqual(
        report.results.map((r) => r.batchSize),
        [1, 256],
      );
      assert.ok(report.results.every((r) => r.entries > 0));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("chapter 10's figures against etcd are bench/README.md's latest", () => {
    const chapter = readFileSync(`${guide}10-benchmarks.md`, "utf8");
    const bench = readFileSync(`${root}bench/README.md`, "utf8");
    const table = /^\| conn \|.*\n(?:\|.*\n)+/m.exec(chapter)?.[0];
    assert.ok(table, "10-benchmarks.md: no table of figures (| conn | ...)");
    assert.ok(
      bench.includes(table),
      "chapter 10's table of figures differs from bench/README.md's: copy the latest run's",
    );
  });

  it("the minimal driver of chapter 8 is under 150 lines", () => {
    const lines = readFileSync(`${examples}minimal-driver.ts`, "utf8").trimEnd().split("\n");
    assert.ok(lines.length < 150, `${lines.length} lines`);
  });

  it("the minimal driver is deterministic: two runs print the same", async () => {
    assert.equal(await runExample("minimal-driver.ts"), await runExample("minimal-driver.ts"));
  });
});
