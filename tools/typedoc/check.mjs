// `npm run docs:check`: fails when an export of the public API (mod.ts and the adapters, as
// typedoc.json lists them) has no doc comment, a {@link} is broken, or the API names a type it
// does not export. TypeDoc finds them (validation in typedoc.json); this script only compares
// what it found with `undocumented.txt`, the known gaps in files being edited elsewhere: a new
// gap fails; a listed one that was fixed is reported, to delete its line.
// Run from the repository root. TypeDoc lives in tools/typedoc with its own TypeScript 6: it does
// not support the TypeScript 7 the project compiles with.
import { readFileSync } from "node:fs";
import { Application, Logger, LogLevel } from "typedoc";

const baselineFile = new URL("./undocumented.txt", import.meta.url);

class Collector extends Logger {
  /** @type {string[]} */ problems = [];
  /** @type {string[]} */ errors = [];
  /** @param {string} text @param {LogLevel} level */
  log(text, level) {
    super.log(text, level);
    if (level === LogLevel.Error) this.errors.push(text);
  }
  /** @param {string} text */
  validationWarning(text) {
    super.validationWarning(text);
    // Keyed by symbol and file only: where a missing type is referenced from may change.
    this.problems.push(
      text
        .replace(/\s+/g, " ")
        .replace(/, is referenced by .* but not included in the documentation$/, ": not exported")
        .replace(/, does not have any documentation$/, ": no doc comment")
        .trim(),
    );
  }
}

const app = await Application.bootstrapWithPlugins({ emit: "none" });
const collector = new Collector();
app.logger = collector;
const project = await app.convert();
if (!project) {
  console.error(`TypeDoc could not convert the project:\n${collector.errors.join("\n")}`);
  process.exit(1);
}
app.validate(project);

const baseline = readFileSync(baselineFile, "utf8")
  .split("\n")
  .map((line) => line.trim())
  .filter((line) => line !== "" && !line.startsWith("#"));
const found = new Set(collector.problems);
const known = new Set(baseline);
const added = [...found].filter((problem) => !known.has(problem)).sort();
const fixed = baseline.filter((problem) => !found.has(problem));

for (const problem of added) console.error(`new: ${problem}`);
for (const problem of fixed)
  console.log(`fixed, delete its line from undocumented.txt: ${problem}`);
if (collector.errors.length > 0) console.error(collector.errors.join("\n"));
if (added.length > 0 || collector.errors.length > 0) {
  console.error(`docs:check failed: ${added.length} undocumented or unexported symbol(s)`);
  process.exit(1);
}
console.log(
  `docs:check: every export is documented, but for ${known.size - fixed.length} known gap(s) in tools/typedoc/undocumented.txt`,
);
