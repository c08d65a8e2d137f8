// Copies each example into its chapter: the ```ts block after `<!-- example: file.ts -->` gets
// the content of docs/guide/examples/file.ts. Run `node docs/guide/embed.mjs` after editing an
// example; test/docs/guide.test.ts fails while a chapter and its example differ.
import { readdirSync, readFileSync, writeFileSync } from "node:fs";

const dir = new URL("./", import.meta.url);
for (const name of readdirSync(dir).filter((file) => /^\d\d-.*\.md$/.test(file))) {
  const file = new URL(name, dir);
  const text = readFileSync(file, "utf8");
  const embedded = text.replace(
    /(<!-- example: ([\w.-]+) -->\n```ts\n)[\s\S]*?(```)/g,
    (_match, head, example, tail) =>
      `${head}${readFileSync(new URL(`examples/${example}`, dir), "utf8")}${tail}`,
  );
  if (embedded !== text) {
    writeFileSync(file, embedded);
    console.log(`updated ${name}`);
  }
}
