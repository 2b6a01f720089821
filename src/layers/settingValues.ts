/** Config readers shared by every layer's settings. */
import { Config, Duration, Schema } from "effect"

/** A duration: a plain number of seconds (Zulip's style, `EMAIL_TIMEOUT=15`) or a string like `500 millis`. */
export const DurationSetting = (name: string): Config.Config<Duration.Duration> =>
  Config.Number(name).pipe(
    Config.map(Duration.seconds),
    Config.orElse(() => Config.Duration(name))
  )

/** A whole number of at least `minimum`; anything else fails at start naming the setting. */
export const CountSetting = (name: string, minimum: number): Config.Config<number> =>
  Config.schema(Schema.Int.check(Schema.isGreaterThanOrEqualTo(minimum)), name)
