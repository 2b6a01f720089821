/**
 * How deeply a JSON value nests, measured without recursion. `JSON.parse` takes any depth, but everything after it
 * that recurses (JSON.stringify, the schema, the Message-ID hash) overflows the stack somewhere past a few thousand
 * levels, so the pipeline refuses an event deeper than `MAX_EVENT_DEPTH` right after parsing it.
 */
import { Effect } from "effect"
import { InvalidEvent } from "./errors.ts"

/** The nesting depth of a parsed JSON value: a scalar is 0, `[]` and `{}` are 1, `[[1]]` is 2. */
export const jsonDepth = (value: unknown): number => {
  let deepest = 0
  const pending: Array<readonly [value: unknown, depth: number]> = [[value, 0]]
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const [current, depth] = next
    if (typeof current !== "object" || current === null) continue
    const inside = depth + 1
    if (inside > deepest) deepest = inside
    for (const child of Array.isArray(current) ? current : Object.values(current)) {
      if (typeof child === "object" && child !== null) pending.push([child, inside])
    }
  }
  return deepest
}

/** Refuse a parsed body nested deeper than `maxDepth`, naming both. */
export const checkEventDepth = (value: unknown, maxDepth: number): Effect.Effect<void, InvalidEvent> => {
  const depth = jsonDepth(value)
  return depth <= maxDepth ? Effect.void : Effect.fail(
    new InvalidEvent({
      message: `invalid email event: the body nests ${depth} levels deep, over MAX_EVENT_DEPTH (${maxDepth})`,
      field: null
    })
  )
}
