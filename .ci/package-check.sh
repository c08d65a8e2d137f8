#!/usr/bin/env bash
# Checks what would be published, without publishing:
# - npm: `npm pack` (its prepack cleans dist/ and builds it), the tarball holds compiled JS and
#   .d.ts only, installs into a fresh project, type-checks a consumer against its .d.ts and runs
#   .ci/package-smoke/smoke.mjs on Node (without and with better-sqlite3), Bun and Deno;
# - the README's 30-second example, as printed there, type-checked and run the same way;
# - the guide's getting-started example (docs/guide/examples/getting-started.ts, a 3-node cluster
#   over HTTP), its imports turned into `keel` and `keel/<runtime>`, type-checked against the
#   published .d.ts and run from that project on Node (through tsx), Bun and Deno;
# - JSR: package.json and deno.json export the same subpaths; a Deno project imports the local
#   package as `jsr:@keel/keel` (deno.json `links`) and runs the same example with `@keel/keel`
#   specifiers; `deno publish --dry-run` passes.
# Needs `npm ci` first. Only hono, valibot, @hono/node-server and tsx are installed from the
# registry (from npm's cache when `npm ci` put them there; Deno fetches hono and valibot from the
# npm registry too); better-sqlite3, an optional peer, is not installed: the already-built one
# from this checkout is linked in for the second Node run.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD
bin=$root/node_modules/.bin
work=$(mktemp -d "${TMPDIR:-/tmp}/keel-package-check.XXXXXX")
trap 'rm -rf "$work"' EXIT

step() {
  printf -- '-- [%ss] %s\n' "$SECONDS" "$1"
}

step "exports: package.json and deno.json name the same subpaths"
node --input-type=module -e '
import { readFileSync } from "node:fs";
const npm = JSON.parse(readFileSync("package.json", "utf8")).exports;
const jsr = JSON.parse(readFileSync("deno.json", "utf8")).exports;
const keys = (o) => Object.keys(o).sort().join(" ");
if (keys(npm) !== keys(jsr)) throw new Error(`package.json: ${keys(npm)}; deno.json: ${keys(jsr)}`);
for (const [subpath, source] of Object.entries(jsr)) {
  const built = source.replace(/^\.\//, "./dist/").replace(/\.ts$/, "");
  const want = { types: `${built}.d.ts`, default: `${built}.js` };
  if (JSON.stringify(npm[subpath]) !== JSON.stringify(want)) {
    throw new Error(`package.json exports["${subpath}"] should be ${JSON.stringify(want)}`);
  }
}
console.log(`subpaths: ${keys(npm)}`);
'

step "npm pack (prepack: clean and build dist/)"
npm pack --silent --pack-destination "$work" >/dev/null
tarballs=("$work"/*.tgz)
tarball=${tarballs[0]}
echo "$(basename "$tarball"): $(du -k "$tarball" | cut -f1) kB"

step "tarball contents: compiled JS and declarations only"
tar -tzf "$tarball" | sort >"$work/contents.txt"
for file in package/package.json package/README.md package/CHANGELOG.md package/LICENSE \
  package/dist/mod.js package/dist/mod.d.ts \
  package/dist/adapters/{node,bun,deno}.{js,d.ts}; do
  grep -qx "$file" "$work/contents.txt" || { echo "missing from the tarball: $file"; exit 1; }
done
if grep -vE '^package/(package\.json|README\.md|CHANGELOG\.md|LICEN[CS]E[^/]*|dist/.+\.(js|d\.ts))$' \
  "$work/contents.txt"; then
  echo "unexpected files in the tarball (above)"
  exit 1
fi
if tar -xzOf "$tarball" --wildcards 'package/dist/*.js' | grep -nE "from \"\.{1,2}/[^\"]*\.ts\"|import\(\"\.{1,2}/[^\"]*\.ts\"\)"; then
  echo "compiled JS still imports .ts files (above)"
  exit 1
fi
echo "$(wc -l <"$work/contents.txt") files"

# The guide's first example with the imports a user writes: `keel` and `keel/<runtime>` (npm) or
# `@keel/keel` and `@keel/keel/<runtime>` (JSR). Fails if a relative import is left over.
example() {
  sed -e "s#\"\.\./\.\./\.\./mod\.ts\"#\"$1\"#g" \
    -e "s#\"\.\./\.\./\.\./adapters/server\.ts\"#\"$1/node\"#g" \
    -e "s#\`\.\./\.\./\.\./adapters/\${runtime}\.ts\`#\`$1/\${runtime}\`#g" \
    docs/guide/examples/getting-started.ts >"$2"
  if grep -n '\.\./' "$2"; then
    echo "relative imports left in the example (above)"
    exit 1
  fi
}

# Runs the example with "$@" and checks that the three nodes applied the same three writes.
run_example() {
  local output
  output=$("$@") || { echo "$output"; exit 1; }
  echo "$output" | sed 's/^/   /'
  [ "$(echo "$output" | grep -cE '^n[123]: total 6$')" = 3 ] &&
    echo "$output" | grep -qx 'read on the leader: 6' ||
    { echo "the example did not print what the guide says"; exit 1; }
}

step "install the tarball into a fresh project"
app=$work/app
mkdir "$app"
cp .ci/package-smoke/smoke.mjs .ci/package-smoke/tsconfig.json "$app/"
example keel "$app/getting-started.ts"
# The README's 30-second example, exactly as printed there (it imports "keel").
node --input-type=module -e '
import { readFileSync, writeFileSync } from "node:fs";
const match = /<!-- readme-example -->\n```ts\n([\s\S]*?)```/.exec(readFileSync("README.md", "utf8"));
if (!match) throw new Error("README.md: no ts block after <!-- readme-example -->");
writeFileSync(process.argv[1], match[1]);
' "$app/readme.ts"
printf '{ "name": "keel-package-check", "private": true, "type": "module" }\n' >"$app/package.json"
tsx_version=$(node -p 'require("./node_modules/tsx/package.json").version')
(cd "$app" && npm install --silent --no-audit --no-fund --prefer-offline "$tarball" "tsx@$tsx_version")
if [ -e "$app/node_modules/better-sqlite3" ]; then
  echo "better-sqlite3 was installed although it is an optional peer"
  exit 1
fi

step "type-check a consumer and the example against the published .d.ts (tsc, strict, no skipLibCheck)"
(cd "$app" && "$bin/tsc" -p tsconfig.json)

step "run: Node $(node --version), without better-sqlite3"
(cd "$app" && node smoke.mjs "$work/node-none.db" no)

step "run: Node, with this checkout's built better-sqlite3 linked in"
ln -s "$root/node_modules/better-sqlite3" "$app/node_modules/better-sqlite3"
(cd "$app" && node smoke.mjs "$work/node.db")
rm "$app/node_modules/better-sqlite3"

step "run: Bun $("$bin/bun" --version)"
(cd "$app" && "$bin/bun" smoke.mjs "$work/bun.db")

step "run: $("$bin/deno" --version | head -n 1)"
(cd "$app" && "$bin/deno" run --allow-all --no-lock --node-modules-dir=manual smoke.mjs "$work/deno.db")

# Runs the README's example with "$@" and checks what it printed.
run_readme() {
  local output
  output=$("$@") || { echo "$output"; exit 1; }
  echo "   $output"
  echo "$output" | grep -qE '^committed at index [0-9]+; n[123] applied: hello, raft$' ||
    { echo "the README's example did not print what it should"; exit 1; }
}

step "the README's example, from the tarball: Node (tsx), Bun, Deno"
(cd "$app" && run_readme node --import tsx readme.ts)
(cd "$app" && run_readme "$bin/bun" readme.ts)
(cd "$app" && run_readme "$bin/deno" run --allow-all --no-lock --node-modules-dir=manual readme.ts)

step "the guide's getting-started example, from the tarball: Node $(node --version) (tsx)"
(cd "$app" && run_example node --import tsx getting-started.ts)

step "the guide's getting-started example, from the tarball: Bun"
(cd "$app" && run_example "$bin/bun" getting-started.ts)

step "the guide's getting-started example, from the tarball: Deno"
(cd "$app" && run_example "$bin/deno" run --allow-all --no-lock --node-modules-dir=manual getting-started.ts)

step "JSR: a Deno project imports jsr:@keel/keel from this checkout (links) and runs the example"
jsr=$work/jsr-app
mkdir "$jsr"
example @keel/keel "$jsr/main.ts"
node --input-type=module -e '
import { readFileSync, writeFileSync } from "node:fs";
const [root, out] = process.argv.slice(1);
const keel = JSON.parse(readFileSync(`${root}/deno.json`, "utf8"));
const config = {
  imports: { "@keel/keel": `jsr:${keel.name}@^${keel.version}`, hono: keel.imports.hono },
  links: [root],
};
writeFileSync(out, `${JSON.stringify(config, null, 2)}\n`);
' "$root" "$jsr/deno.json"
(cd "$jsr" && run_example "$bin/deno" run --allow-all main.ts)

step "JSR: deno publish --dry-run"
"$bin/deno" publish --dry-run --allow-dirty

step "done"
