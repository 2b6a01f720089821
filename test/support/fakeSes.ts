/**
 * A loopback stand-in for the SESv2 API's `DeleteSuppressedDestination` (`DELETE
 * /v2/email/suppression/addresses/{EmailAddress}`), recording every request.
 *
 * `answer(address)` says how it replies: "removed" (200 `{}`), "notFound" (404 `NotFoundException`, the address
 * was not on the list), "denied" (403 `AccessDeniedException`), or "hang" (never; the request stays open until the
 * client gives up, which `aborted` then records). `received(count)` waits, without a clock, until `count` requests
 * have come in. Closed when the scope ends.
 */
import { Effect, type Scope } from "effect"
import { createServer, type ServerResponse } from "node:http"
import { loopbackHttpServer } from "./listener.ts"

export type FakeSesAnswer = "removed" | "notFound" | "denied" | "hang"

export interface FakeSesRequest {
  readonly method: string
  readonly path: string
  /** the address the path names, decoded */
  readonly address: string
  readonly authorization: string | undefined
  /** the client closed the request before it was answered */
  aborted: boolean
}

export interface FakeSes {
  readonly url: string
  readonly requests: ReadonlyArray<FakeSesRequest>
  readonly received: (count: number) => Effect.Effect<void>
}

const addressPath = /^\/v2\/email\/suppression\/addresses\/([^/?]+)$/

const replyError = (response: ServerResponse, status: number, type: string) => {
  response.writeHead(status, { "content-type": "application/json", "x-amzn-errortype": type })
  response.end(JSON.stringify({ message: `${type} from the fake` }))
}

export const fakeSes = (answer: (address: string) => FakeSesAnswer = () => "removed"): Effect.Effect<FakeSes, never, Scope.Scope> =>
  Effect.gen(function*() {
    const requests: Array<FakeSesRequest> = []
    const waiting: Array<{ readonly count: number; readonly resolve: () => void }> = []
    const server = createServer((request, response) => {
      const path = request.url ?? ""
      const match = addressPath.exec(path)
      const address = match === null ? "" : decodeURIComponent(match[1]!)
      const recorded: FakeSesRequest = {
        method: request.method ?? "",
        path,
        address,
        authorization: request.headers.authorization,
        aborted: false
      }
      requests.push(recorded)
      response.on("close", () => {
        if (!response.writableEnded) recorded.aborted = true
      })
      for (const waiter of waiting.filter((w) => requests.length >= w.count)) {
        waiting.splice(waiting.indexOf(waiter), 1)
        waiter.resolve()
      }
      request.resume()
      if (match === null || request.method !== "DELETE") return replyError(response, 404, "UnknownOperationException")
      switch (answer(address)) {
        case "removed":
          response.writeHead(200, { "content-type": "application/json" })
          return response.end("{}")
        case "notFound":
          return replyError(response, 404, "NotFoundException")
        case "denied":
          return replyError(response, 403, "AccessDeniedException")
        case "hang":
          return
      }
    })
    const port = yield* loopbackHttpServer(server)
    return {
      url: `http://127.0.0.1:${port}`,
      requests,
      received: (count) =>
        Effect.callback<void>((resume) => {
          if (requests.length >= count) return resume(Effect.void)
          waiting.push({ count, resolve: () => resume(Effect.void) })
        })
    }
  })

/** A loopback port with nothing listening on it: connections are refused. */
export const closedPort: Effect.Effect<number> = Effect.callback<number>((resume) => {
  const server = createServer()
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})
