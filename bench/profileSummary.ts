/**
 * Where a worker's CPU went, per email: `node bench/profileSummary.ts <file.cpuprofile> <emails> [top]`.
 * Profiles come from `BENCH_PROFILE=<dir> npm run bench -- <scenario>` (each worker runs with `--cpu-prof`).
 * Prints self time by category (Effect, nodemailer, GC, socket writes, …) and the top functions.
 */
import { existsSync, readFileSync } from "node:fs"
import { SourceMap } from "node:module"
import { fileURLToPath } from "node:url"

interface CallFrame {
  readonly functionName: string
  readonly url: string
  readonly lineNumber: number
  readonly columnNumber: number
}

interface ProfileNode {
  readonly id: number
  readonly callFrame: CallFrame
  readonly hitCount: number
}

interface Profile {
  readonly nodes: ReadonlyArray<ProfileNode>
  readonly startTime: number
  readonly endTime: number
}

const [file, emailsArgument, topArgument] = process.argv.slice(2)
if (file === undefined || emailsArgument === undefined) {
  process.stderr.write("usage: node bench/profileSummary.ts <file.cpuprofile> <emails> [top]\n")
  process.exit(2)
}
const recorded = JSON.parse(readFileSync(file, "utf8")) as Profile

/**
 * `dist/main.js` is one bundle, so its functions are named back to the sources they came from (`node_modules/…`,
 * `src/…`) through the bundle's source map, when it is next to it.
 */
const sourceMaps = new Map<string, SourceMap | null>()
const sourceMapOf = (url: string): SourceMap | null => {
  if (!sourceMaps.has(url)) {
    const mapFile = url.startsWith("file://") ? `${fileURLToPath(url)}.map` : ""
    sourceMaps.set(url, mapFile !== "" && existsSync(mapFile) ? new SourceMap(JSON.parse(readFileSync(mapFile, "utf8"))) : null)
  }
  return sourceMaps.get(url) ?? null
}
const original = (frame: CallFrame): CallFrame => {
  const map = frame.lineNumber < 0 ? null : sourceMapOf(frame.url)
  const entry = map?.findEntry(frame.lineNumber, frame.columnNumber)
  if (entry === undefined || !("originalSource" in entry)) return frame
  return { ...frame, url: entry.originalSource, lineNumber: entry.originalLine, columnNumber: entry.originalColumn }
}
const profile: Profile = {
  ...recorded,
  nodes: recorded.nodes.map((node) => ({ ...node, callFrame: original(node.callFrame) }))
}
const emails = Number(emailsArgument)
const samples = profile.nodes.reduce((sum, node) => sum + node.hitCount, 0)
const secondsPerSample = (profile.endTime - profile.startTime) / 1e6 / samples

const nativeWrites: ReadonlySet<string> = new Set(["writeBuffer", "writev", "writeUtf8String", "writeLatin1String"])
const packageOf = /node_modules\/((?:@[^/]+\/)?[^/]+)/

const categoryOf = ({ callFrame: { functionName, url } }: ProfileNode): string => {
  if (functionName === "(idle)") return "idle"
  if (functionName === "(garbage collector)") return "garbage collector"
  if (url === "") return nativeWrites.has(functionName) ? "socket and log writes (native)" : "other native"
  if (url.includes("email-addresses") || url.includes("domain/addresses")) return "address parsing"
  const dependency = packageOf.exec(url)?.[1]
  if (dependency === "effect") return "Effect runtime and library"
  if (dependency !== undefined) return dependency
  if (url.includes("/dist/") || url.includes("/src/") || url.includes("/bench/")) return "worker's own code"
  if (url.startsWith("node:internal/modules") || url.includes("bootstrap")) return "module loading"
  if (url.startsWith("node:internal/crypto")) return "crypto (MIME boundaries)"
  if (url.startsWith("node:")) return "Node streams, events, timers"
  return url
}

const functionOf = ({ callFrame: { functionName, url, lineNumber } }: ProfileNode): string =>
  `${functionName || "(anonymous)"} ${url.replace(/^.*node_modules\//, "").replace(/^file:\/\/.*\/(dist|src|bench)\//, "$1/")}:${lineNumber + 1}`

const tally = (key: (node: ProfileNode) => string): Array<readonly [string, number]> => {
  const hits = new Map<string, number>()
  for (const node of profile.nodes) hits.set(key(node), (hits.get(key(node)) ?? 0) + node.hitCount)
  return [...hits].sort((a, b) => b[1] - a[1])
}

const busy = samples - profile.nodes.filter((node) => node.callFrame.functionName === "(idle)")
  .reduce((sum, node) => sum + node.hitCount, 0)
const row = ([name, hits]: readonly [string, number]): string => {
  const seconds = hits * secondsPerSample
  const share = name === "idle" ? "" : `${((100 * hits) / busy).toFixed(1)} %`
  return `${seconds.toFixed(2).padStart(8)} s ${((seconds * 1e6) / emails).toFixed(0).padStart(7)} µs/email ${share.padStart(7)}  ${name}`
}

process.stdout.write(
  `${file}: ${(samples * secondsPerSample).toFixed(1)} s profiled, ${((busy * secondsPerSample * 1e6) / emails).toFixed(0)} µs busy per email\n\n` +
    `By category (self time):\n${tally(categoryOf).filter(([, hits]) => hits * secondsPerSample >= 0.01).map(row).join("\n")}\n\n` +
    `Top functions (self time):\n${tally(functionOf).slice(0, Number(topArgument ?? 25)).map(row).join("\n")}\n`
)
