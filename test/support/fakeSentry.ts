/**
 * A loopback stand-in for Sentry's ingest endpoint: a DSN pointing at it makes the SDK post its envelopes here,
 * where they are recorded as received (the raw text, for "this string never left") and parsed (each item's header
 * and payload).
 *
 * `mode`: `"accept"` answers 200; `"hang"` reads each request and never answers (a Sentry that is slow to the point
 * of being down), counting the requests it holds.
 */
import { Effect, type Scope } from "effect"
import { createServer } from "node:http"
import { gunzipSync } from "node:zlib"
import { loopbackHttpServer } from "./listener.ts"

export interface EnvelopeItem {
  readonly header: Record<string, unknown>
  readonly payload: Record<string, unknown>
}

export interface Envelope {
  readonly header: Record<string, unknown>
  readonly items: ReadonlyArray<EnvelopeItem>
  /** the whole body as received (decompressed) */
  readonly raw: string
}

export interface FakeSentry {
  /** `http://public@127.0.0.1:<port>/42` */
  readonly dsn: string
  readonly envelopes: () => ReadonlyArray<Envelope>
  /** the payloads of the items of this type (`event`, `transaction`) across all envelopes */
  readonly items: (type: string) => ReadonlyArray<Record<string, unknown>>
  /** requests received, answered or not */
  readonly requests: () => number
}

const parseEnvelope = (raw: string): Envelope => {
  const lines = raw.split("\n").filter((line) => line !== "")
  const items: Array<EnvelopeItem> = []
  for (let index = 1; index + 1 < lines.length; index += 2) {
    items.push({ header: JSON.parse(lines[index]!), payload: JSON.parse(lines[index + 1]!) })
  }
  return { header: JSON.parse(lines[0] ?? "{}"), items, raw }
}

export const fakeSentry = (mode: "accept" | "hang" = "accept"): Effect.Effect<FakeSentry, never, Scope.Scope> =>
  Effect.gen(function*() {
    const envelopes: Array<Envelope> = []
    let requests = 0
    const server = createServer((request, response) => {
      requests++
      const chunks: Array<Buffer> = []
      request.on("data", (chunk: Buffer) => chunks.push(chunk))
      request.on("end", () => {
        const body = Buffer.concat(chunks)
        const text = (request.headers["content-encoding"] === "gzip" ? gunzipSync(body) : body).toString("utf8")
        envelopes.push(parseEnvelope(text))
        // a hanging Sentry keeps the request open without an answer
        if (mode === "accept") response.writeHead(200, { "content-type": "application/json" }).end("{}")
      })
    })
    // answers held back are cut when the server closes
    const port = yield* loopbackHttpServer(server)
    return {
      dsn: `http://public@127.0.0.1:${port}/42`,
      envelopes: () => envelopes,
      items: (type) => envelopes.flatMap((envelope) => envelope.items.filter((item) => item.header.type === type).map((item) => item.payload)),
      requests: () => requests
    }
  })
