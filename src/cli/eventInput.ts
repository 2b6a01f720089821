import { Effect, Option, Stdio, Stream } from "effect"
import { Flag } from "effect/cli"
import { parseJsonBody } from "../domain/EmailEvent.ts"
import { checkEventDepth } from "../domain/jsonDepth.ts"
import { MaxEventDepthSetting } from "../config/settingValues.ts"

/** `--file event.json`, or standard input when it is not given. */
export const eventFileFlag = Flag.FileText("file").pipe(
  Flag.withDescription("JSON file holding the event (default: read it from standard input)"),
  Flag.optional
)

/**
 * The event JSON from `--file` or standard input, parsed (not yet decoded), and no deeper than `MAX_EVENT_DEPTH`:
 * `publish` and `render` walk and serialise it as the worker does.
 */
export const readEventJson = (file: Option.Option<string>) =>
  Option.match(file, {
    onSome: Effect.succeed,
    onNone: () => Effect.flatMap(Stdio.Stdio, (stdio) => Stream.mkString(Stream.decodeText(stdio.stdin)))
  }).pipe(
    Effect.flatMap(parseJsonBody),
    Effect.tap((json) => Effect.flatMap(MaxEventDepthSetting, (maxDepth) => checkEventDepth(json, maxDepth)))
  )
