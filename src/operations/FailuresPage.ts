/**
 * `/failures` on the operations endpoint, served only when `OPERATIONS_TOKEN` is set: the failures recorded in the
 * errors file, counted by tag and template over time, filtered as `replay` filters them, one in detail, and replay
 * of one or of the filtered set with the `replay` command's own code (`records/replayFailures.ts`: each event once,
 * confirmed, then marked in the sidecar), published on the worker's broker connection.
 *
 * Every request needs the token (`operatorAccess.ts`); without it a page answers 401 with the login form. POSTs
 * are CSRF-safe. One replay runs at a time, so two clicks cannot send an event twice.
 */
import { Config, type Duration, Effect, FileSystem, Layer, Option, Redacted, Schema, Semaphore, Sink, Stdio, Stream } from "effect"
import { join } from "node:path"
import { HttpRouter, HttpServerRequest, HttpServerResponse, UrlParams } from "effect/http"
import { findFailure, listFailures } from "../records/failureListing.ts"
import { type ReplayedEvent, type ReplayFilters, replayFailures } from "../records/replayFailures.ts"
import {
  CommandTimeoutSetting,
  ErrorsDirectorySetting,
  MaxEventDepthSetting,
  MessageIdHostSetting,
  QueueNameSetting
} from "../config/settingValues.ts"
import { RabbitMqConnection } from "../queue/RabbitMqConnection.ts"
import { QueuePublisher } from "../queue/QueuePublisher.ts"
import * as RabbitMqPublisher from "../queue/RabbitMqPublisher.ts"
import { detailPage, listPage, loginPage, problemPage, replayPage } from "./failuresView.ts"
import { operatorPage } from "./html.ts"
import { fromOwnOrigin, makeOperatorAccess, type Operator, SESSION_COOKIE, sessionCookieOptions } from "./operatorAccess.ts"

export interface FailuresPageOptions {
  /** `OPERATIONS_TOKEN` */
  readonly token: Redacted.Redacted<string>
  /** `QUEUE_ERROR_DIR/<queue>.errors` */
  readonly errorsFile: string
  /** where replayed events are published (`QUEUE_NAME`) */
  readonly queueName: string
  /** `MAX_EVENT_DEPTH`, as `replay` checks it */
  readonly maxEventDepth: number
  /** the host of the Message-ID given to a replayed event without one (`EXTERNAL_HOST`) */
  readonly messageIdHost: string
  /** how long a publish may wait for the broker's confirm (`COMMAND_TIMEOUT`) */
  readonly publishTimeout: Duration.Input
}

/** Failures listed at once, newest first; replayed events listed on a replay's result page. */
const LISTED = 200

/** `replay`'s progress goes to standard error for big files; the page shows its own result instead. */
const noProgressOutput = Layer.succeed(
  Stdio.Stdio,
  Stdio.make({ args: Effect.succeed([]), stdout: () => Sink.drain, stderr: () => Sink.drain, stdin: Stream.empty })
)

/** A `datetime-local` or ISO 8601 value, as `replay --since` reads it (without a zone: local time). */
const parseTime = (value: string | undefined): Date | undefined | "invalid" => {
  if (value === undefined || value.trim() === "") return undefined
  const time = new Date(value)
  return Number.isNaN(time.getTime()) ? "invalid" : time
}

/** The filters a query or a form gives, and what in them could not be read. */
const readFilters = (field: (name: string) => string | undefined): { readonly filters: ReplayFilters; readonly problem: string | null } => {
  const since = parseTime(field("since"))
  const until = parseTime(field("until"))
  const nonEmpty = (value: string | undefined) => value === undefined || value === "" ? undefined : value
  return {
    filters: {
      tag: nonEmpty(field("tag")),
      template: nonEmpty(field("template")),
      since: since === "invalid" ? undefined : since,
      until: until === "invalid" ? undefined : until
    },
    problem: since === "invalid" || until === "invalid" ? "A time filter could not be read and is ignored (use YYYY-MM-DDTHH:MM)." : null
  }
}

const queryField = (request: HttpServerRequest.HttpServerRequest) => {
  const params = new URL(request.url, "http://operations.invalid").searchParams
  return (name: string) => params.get(name) ?? undefined
}

const html = (body: string, status = 200) => operatorPage(body, status)

const unauthorized = operatorPage(loginPage(null), 401, { "www-authenticate": "Bearer realm=\"email-senders operations\"" })

const forbidden = (operator: Operator) =>
  html(problemPage("Refused", "This request did not come from this page (CSRF check): reload the page and try again.", operator), 403)

const isMissingFile = (error: { readonly _tag: string; readonly reason?: { readonly _tag: string } }) =>
  error._tag === "PlatformError" && error.reason?._tag === "NotFound"

export const makeRoutes = Effect.fnUntraced(function*(options: FailuresPageOptions) {
  const connection = yield* RabbitMqConnection
  const fs = yield* FileSystem.FileSystem
  const access = makeOperatorAccess(options.token)
  const oneReplayAtATime = yield* Semaphore.make(1)
  const publisher = RabbitMqPublisher.layerNoDeps({
    queueName: options.queueName,
    messageIdHost: options.messageIdHost,
    giveUpAfter: options.publishTimeout
  }).pipe(Layer.provide(Layer.succeed(RabbitMqConnection, connection)))

  /** The page for an operator, else 401 with the login form. */
  const forOperator = <E, R>(
    page: (operator: Operator, request: HttpServerRequest.HttpServerRequest) => Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>
  ) =>
    Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const operator = yield* access.operatorOf(request)
      return Option.isNone(operator) ? unauthorized : yield* page(operator.value, request)
    })

  /** A POST's form fields, checked against CSRF; a refusal when the check fails. */
  const postedForm = (operator: Operator, request: HttpServerRequest.HttpServerRequest) =>
    Effect.map(Effect.orElseSucceed(request.urlParamsBody, () => UrlParams.empty), (form) => {
      const field = (name: string) => Option.getOrUndefined(UrlParams.getFirst(form, name))
      return access.mayPost(operator, request, field("csrf")) ? Option.some(field) : Option.none()
    })

  const withFileSystem = Effect.provideService(FileSystem.FileSystem, fs)

  const list = forOperator((operator, request) => {
    const { filters, problem } = readFilters(queryField(request))
    return listFailures(options.errorsFile, filters, LISTED).pipe(
      withFileSystem,
      Effect.map((listing) => html(listPage(options.errorsFile, listing, filters, operator, problem))),
      Effect.catch((error) =>
        Effect.succeed(
          isMissingFile(error)
            ? html(problemPage("Failed emails", `No failures recorded: ${options.errorsFile} does not exist yet.`, operator))
            : html(problemPage("Failed emails", `Cannot read ${options.errorsFile}: ${error.message}`, operator), 500)
        )
      )
    )
  })

  const detail = forOperator((operator, request) => {
    const field = queryField(request)
    return findFailure(options.errorsFile, field("key") ?? "").pipe(
      withFileSystem,
      Effect.map((failure) =>
        failure === undefined
          ? html(problemPage("Failed email", "No recorded failure has this key.", operator), 404)
          : html(detailPage(failure, field("reveal") === "1", operator))
      ),
      Effect.catch((error) => Effect.succeed(html(problemPage("Failed email", `Cannot read ${options.errorsFile}: ${error.message}`, operator), 500)))
    )
  })

  const replay = forOperator((operator, request) =>
    Effect.gen(function*() {
      const form = yield* postedForm(operator, request)
      if (Option.isNone(form)) return forbidden(operator)
      const field = form.value
      const key = field("key")
      if (key === undefined && field("all") !== "1") {
        return html(problemPage("Replay", "Say what to replay: one failure (key) or all that match (all=1).", operator), 400)
      }
      const { filters, problem } = key === undefined ? readFilters(field) : { filters: { keys: new Set([key]) }, problem: null }
      if (problem !== null) return html(problemPage("Replay", problem, operator), 400)
      const replayed: Array<ReplayedEvent> = []
      const onReplayed = (event: ReplayedEvent) =>
        Effect.sync(() => {
          if (replayed.length < LISTED) replayed.push(event)
        })
      return yield* Effect.gen(function*() {
        const { publishEmail } = yield* QueuePublisher
        return yield* replayFailures({
          file: options.errorsFile,
          filters,
          maxEventDepth: options.maxEventDepth,
          target: { _tag: "Publish", publishEmail, onReplayed }
        })
      }).pipe(
        Effect.provide(Layer.merge(publisher, noProgressOutput)),
        withFileSystem,
        oneReplayAtATime.withPermits(1),
        Effect.map((summary) => html(replayPage(summary, replayed, options.queueName, filters, operator))),
        Effect.catch((error) =>
          Effect.succeed(html(
            problemPage(
              "Replay",
              `The replay stopped: ${error.message}. What was published is marked; replaying again sends the rest.`,
              operator
            ),
            502
          ))
        )
      )
    })
  )

  const login = Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    if (!fromOwnOrigin(request)) return operatorPage(loginPage("This login did not come from this page."), 403)
    const form = yield* Effect.orElseSucceed(request.urlParamsBody, () => UrlParams.empty)
    const session = yield* access.logIn(Option.getOrElse(UrlParams.getFirst(form, "token"), () => ""))
    if (Option.isNone(session)) return operatorPage(loginPage("That is not the operations token."), 401)
    return HttpServerResponse.redirect("/failures", { status: 303 }).pipe(
      HttpServerResponse.setCookieUnsafe(SESSION_COOKIE, session.value, sessionCookieOptions)
    )
  })

  const logout = forOperator((operator, request) =>
    Effect.gen(function*() {
      if (Option.isNone(yield* postedForm(operator, request))) return forbidden(operator)
      yield* access.logOut(request)
      return HttpServerResponse.redirect("/failures/login", { status: 303 }).pipe(
        HttpServerResponse.setCookieUnsafe(SESSION_COOKIE, "", { ...sessionCookieOptions, maxAge: 0 })
      )
    })
  )

  return [
    HttpRouter.route("GET", "/failures", list),
    HttpRouter.route("GET", "/failures/event", detail),
    HttpRouter.route("POST", "/failures/replay", replay),
    HttpRouter.route("GET", "/failures/login", Effect.succeed(operatorPage(loginPage(null)))),
    HttpRouter.route("POST", "/failures/login", login),
    HttpRouter.route("POST", "/failures/logout", logout)
  ]
})

/** `OPERATIONS_TOKEN`: at least 16 characters, as a password someone could guess would open the replay. */
const TokenSetting = Config.schema(
  Schema.String.check(Schema.makeFilter((value: string) =>
    value.trim().length >= 16 ? undefined : "expected at least 16 characters (e.g. openssl rand -hex 24) (the value is not shown)"
  )),
  "OPERATIONS_TOKEN"
).pipe(Config.map((token) => Redacted.make(token.trim())))

/**
 * The page's options when `OPERATIONS_TOKEN` is set (none otherwise): the errors file of `QUEUE_ERROR_DIR` and
 * `QUEUE_NAME`, replayed to `QUEUE_NAME` with `MAX_EVENT_DEPTH`, `EXTERNAL_HOST` and `COMMAND_TIMEOUT` as `replay`.
 */
export const optionsConfig: Config.Config<Option.Option<FailuresPageOptions>> = Config.option(TokenSetting).pipe(
  Config.flatMap((token) =>
    Option.isNone(token) ? Config.succeed(Option.none()) : Config.all({
      directory: ErrorsDirectorySetting,
      queueName: QueueNameSetting,
      maxEventDepth: MaxEventDepthSetting,
      messageIdHost: MessageIdHostSetting,
      publishTimeout: CommandTimeoutSetting
    }).pipe(Config.map(({ directory, ...rest }) =>
      Option.some({ token: token.value, errorsFile: join(directory, `${rest.queueName}.errors`), ...rest })
    ))
  )
)
