/**
 * `dist/main.js` as one file (and `dist/bundle/`, what only some settings load): the worker started from `tsc`'s output loads some 900 modules, whose code and source
 * text stay on the heap, and V8 sizes the old generation from what is live. The bundle's heap is a third smaller
 * and its peak RSS on the 100k backlog 60-100 MB lower (bench/FINDINGS.md). `dist/index.js` and the rest of
 * `tsc`'s output stay as they are, for apps that embed the library.
 */
import { chmodSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { build } from "esbuild"

const projectDir = dirname(dirname(fileURLToPath(import.meta.url)))
const outfile = join(projectDir, "dist", "main.js")

// chunks are named by their content's hash: those of an earlier build would otherwise stay, and be packed
rmSync(join(projectDir, "dist", "bundle"), { recursive: true, force: true })

const { metafile } = await build({
  entryPoints: [join(projectDir, "src", "main.ts")],
  absWorkingDir: projectDir,
  outdir: join(projectDir, "dist"),
  // what is loaded with `import()` only when a setting asks for it (node-redis with `REDIS_URL`) is a chunk of its
  // own, so a worker without it does not hold its source either
  splitting: true,
  chunkNames: "bundle/[name]-[hash]",
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node22",
  // the CommonJS dependencies (amqplib, nodemailer, pg) require Node's own modules
  banner: { js: "import { createRequire as __createRequire } from \"node:module\"; const require = __createRequire(import.meta.url);" },
  // pg's optional native binding: loaded only if the application asks for it, which this worker never does. The
  // AWS SDK (several MB) is loaded with `import()` from node_modules only when SES's suppression list is used
  // (src/smtp/SesSuppressionList.ts), and Sentry's SDK only when SENTRY_DSN is set (src/operations/ErrorTracking.ts)
  // @css-inline/css-inline is a native (.node) module, loaded from node_modules; chokidar is nunjucks' optional
  // file watcher, which the worker never asks for
  external: ["pg-native", "@aws-sdk/*", "@sentry/*", "@css-inline/*", "chokidar"],
  charset: "ascii",
  // identifiers are not minified, so functions and classes keep their names as written; `keepNames` would also
  // wrap every nested function in a `__name()` call, made each time the function is created (+15 % CPU per email)
  minifyWhitespace: true,
  minifySyntax: true,
  sourcemap: "linked",
  metafile: true,
  logLevel: "warning"
})

/**
 * V8 keeps a script's source as one byte per character only while every character is Latin-1; a single other one
 * (three remain in a dependency's regular expressions, which `charset: "ascii"` leaves as they are) doubles the
 * whole bundle's source on the heap. `\uXXXX` means the same character in a regular expression.
 */
for (const output of Object.keys(metafile.outputs).filter((path) => path.endsWith(".js"))) {
  const path = join(projectDir, output)
  const source = readFileSync(path, "utf8")
  writeFileSync(path, source.replace(/[^\x00-\xff]/g, (character) => `\\u${character.charCodeAt(0).toString(16).padStart(4, "0")}`))
}
// `npm install -g` links the bin, and a shell runs it through the shebang
chmodSync(outfile, 0o755)
