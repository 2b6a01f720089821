import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Fiber, Layer } from "effect"
import { TestClock } from "effect/testing"
import * as SesSuppressionList from "../src/smtp/SesSuppressionList.ts"
import { SuppressionList } from "../src/smtp/SuppressionList.ts"
import { type FakeSes, type FakeSesAnswer, fakeSes } from "./support/fakeSes.ts"
import { withCapturedLogs } from "./support/logCapture.ts"

const credentials = { accessKeyId: "AKIDSUPPRESSIONTEST", secretAccessKey: "not-a-real-secret" }

describe("sesRegionOf", () => {
  it("gives the region of SES's SMTP endpoints, FIPS included", () => {
    assert.strictEqual(SesSuppressionList.sesRegionOf("email-smtp.us-east-1.amazonaws.com"), "us-east-1")
    assert.strictEqual(SesSuppressionList.sesRegionOf("email-smtp.eu-central-1.amazonaws.com"), "eu-central-1")
    assert.strictEqual(SesSuppressionList.sesRegionOf("email-smtp-fips.us-gov-west-1.amazonaws.com"), "us-gov-west-1")
  })

  it("is null for any other host, near misses included", () => {
    for (
      const host of [
        "smtp.example.com",
        "127.0.0.1",
        "email-smtp.us-east-1.amazonaws.com.evil.com",
        "evil.email-smtp.us-east-1.amazonaws.com",
        "email-smtp.us-east-1.amazonaws.co",
        "email-smtp.us.east.1.amazonaws.com",
        "email-smtp..amazonaws.com",
        "email-smtpXus-east-1.amazonaws.com",
        "email-smtp.us-east-1.amazonawsXcom",
        "email-smtp-fipsy.us-east-1.amazonaws.com",
        "EMAIL-SMTP.us-east-1.amazonaws.com",
        "email-smtp.us-east-1.amazonaws.com\n",
        "email.us-east-1.amazonaws.com"
      ]
    ) assert.isNull(SesSuppressionList.sesRegionOf(host), JSON.stringify(host))
  })
})

const withConfig = (env: Record<string, string>) => Layer.provide(ConfigProvider.layer(ConfigProvider.fromUnknown(env)))

describe("SesSuppressionList.regionConfig", () => {
  const regionFrom = (env: Record<string, string>) =>
    SesSuppressionList.regionConfig.parse(ConfigProvider.fromUnknown(env))

  it.effect("takes the region from EMAIL_HOST, or from SES_SUPPRESSION_REGION, which wins", () =>
    Effect.gen(function*() {
      assert.strictEqual(yield* regionFrom({ EMAIL_HOST: "email-smtp.eu-west-1.amazonaws.com" }), "eu-west-1")
      assert.strictEqual(yield* regionFrom({ EMAIL_HOST: "relay.example.com", SES_SUPPRESSION_REGION: "us-west-2" }), "us-west-2")
      assert.strictEqual(
        yield* regionFrom({ EMAIL_HOST: "email-smtp.eu-west-1.amazonaws.com", SES_SUPPRESSION_REGION: "us-west-2" }),
        "us-west-2"
      )
    }))

  it.effect("is off for another host, and whenever EMAIL_HOST is unset (emails are captured, not sent)", () =>
    Effect.gen(function*() {
      assert.isNull(yield* regionFrom({ EMAIL_HOST: "smtp.example.com" }))
      assert.isNull(yield* regionFrom({ SES_SUPPRESSION_REGION: "us-east-1" }))
      assert.isNull(yield* regionFrom({}))
    }))

  it.effect("refuses a region that is not one, naming the setting", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(regionFrom({ EMAIL_HOST: "relay.example.com", SES_SUPPRESSION_REGION: "us east 1" }))
      assert.include(String(error), "SES_SUPPRESSION_REGION")
    }))
})

/** The live layer from `env`, pointed at `ses` with test credentials unless `env` says otherwise. */
const fromConfig = (ses: FakeSes, env: Record<string, string>) =>
  SesSuppressionList.layerConfig.pipe(withConfig({
    AWS_ENDPOINT_URL_SESV2: ses.url,
    AWS_ACCESS_KEY_ID: credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
    ...env
  }))

const remove = Effect.fnUntraced(function*(addresses: ReadonlyArray<string>) {
  yield* (yield* SuppressionList).remove(addresses)
})

/** Polls `check` in real time (up to 2 s): the server learns of closed connections on its own schedule. */
const eventually = (check: () => boolean) =>
  Effect.promise(async () => {
    for (let poll = 0; poll < 100 && !check(); poll++) await new Promise((resolve) => setTimeout(resolve, 20))
  })

const answers = (byAddress: Record<string, FakeSesAnswer>) => (address: string): FakeSesAnswer => byAddress[address] ?? "removed"

describe("SesSuppressionList against a loopback SESv2 endpoint", () => {
  it.effect("with EMAIL_HOST on SES, each recipient is removed once, signed for the host's region", () =>
    withCapturedLogs((logs) =>
      Effect.gen(function*() {
        const ses = yield* fakeSes()
        yield* remove(["hamlet@zulip.example", "othello@zulip.example", "hamlet@zulip.example"]).pipe(
          Effect.provide(fromConfig(ses, { EMAIL_HOST: "email-smtp.eu-west-1.amazonaws.com" }))
        )
        assert.sameMembers(ses.requests.map((request) => request.address), ["hamlet@zulip.example", "othello@zulip.example"])
        for (const request of ses.requests) {
          assert.strictEqual(request.method, "DELETE")
          assert.match(request.path, /^\/v2\/email\/suppression\/addresses\/[^/]+%40zulip\.example$/)
          assert.match(
            request.authorization ?? "",
            new RegExp(`^AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/\\d{8}/eu-west-1/ses/aws4_request, `)
          )
        }
        assert.deepStrictEqual(logs.map((line) => [line.level, line.message]), [
          ["Info", "Removed 2 recipient(s) from the SES suppression list"]
        ])
      })
    ))

  it.effect("SES_SUPPRESSION_REGION turns it on for another host; AWS_ENDPOINT_URL is the SDK's fallback endpoint", () =>
    Effect.gen(function*() {
      const ses = yield* fakeSes()
      yield* remove(["iago@zulip.example"]).pipe(Effect.provide(SesSuppressionList.layerConfig.pipe(withConfig({
        EMAIL_HOST: "127.0.0.1",
        SES_SUPPRESSION_REGION: "ap-southeast-2",
        AWS_ENDPOINT_URL: ses.url,
        AWS_ACCESS_KEY_ID: credentials.accessKeyId,
        AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey
      }))))
      assert.deepStrictEqual(ses.requests.map((request) => request.address), ["iago@zulip.example"])
      assert.include(ses.requests[0]!.authorization ?? "", "/ap-southeast-2/ses/aws4_request")
    }))

  it.effect("is a no-op when mail does not go through SES", () =>
    Effect.gen(function*() {
      const ses = yield* fakeSes()
      for (const env of [{ EMAIL_HOST: "smtp.example.com" }, { EMAIL_HOST: "email-smtp.us-east-1.amazonaws.com.evil.com" }, {}]) {
        yield* remove(["hamlet@zulip.example"]).pipe(Effect.provide(fromConfig(ses, env)))
      }
      assert.deepStrictEqual(ses.requests, [])
    }))

  it.effect("ignores SES's errors: an address not on the list is no error; others are logged by count and name only", () =>
    withCapturedLogs((logs) =>
      Effect.gen(function*() {
        const ses = yield* fakeSes(answers({ "missing@zulip.example": "notFound", "denied@zulip.example": "denied" }))
        const addresses = ["missing@zulip.example", "denied@zulip.example", "hamlet@zulip.example"]
        yield* remove(addresses).pipe(Effect.provide(fromConfig(ses, { EMAIL_HOST: "email-smtp.us-east-1.amazonaws.com" })))
        assert.sameMembers(ses.requests.map((request) => request.address), addresses)
        assert.deepStrictEqual(logs.map((line) => [line.level, line.message]), [
          ["Info", "Removed 1 recipient(s) from the SES suppression list"],
          ["Warn", "Could not remove 1 of 3 recipient(s) from the SES suppression list (AccessDeniedException); sending anyway"]
        ])
      })
    ))

  it.effect("removes at most 4 addresses at once, and gives up on them all after 5 seconds, cancelling the requests", () =>
    withCapturedLogs((logs) =>
      Effect.gen(function*() {
        const ses = yield* fakeSes(() => "hang")
        const addresses = Array.from({ length: 6 }, (_, n) => `user${n}@zulip.example`)
        const removal = yield* Effect.forkChild(remove(addresses).pipe(
          Effect.provide(fromConfig(ses, { EMAIL_HOST: "email-smtp.us-east-1.amazonaws.com" }))
        ))
        yield* ses.received(4)
        yield* TestClock.adjust("4999 millis")
        assert.isUndefined(removal.pollUnsafe(), "still waiting just before the timeout")
        yield* TestClock.adjust("1 millis")
        yield* Fiber.join(removal)
        assert.strictEqual(ses.requests.length, 4, "never more than 4 in flight")
        yield* eventually(() => ses.requests.every((request) => request.aborted))
        assert.isTrue(ses.requests.every((request) => request.aborted), "the requests were cancelled")
        assert.deepStrictEqual(logs.map((line) => [line.level, line.message]), [
          ["Warn", "Removing 6 recipient(s) from the SES suppression list took over 5s (TimeoutError); sending anyway"]
        ])
      })
    ))
})

describe("SesSuppressionList without credentials", () => {
  it.effect("logs once that removal is off, and why, then skips every removal", () =>
    withCapturedLogs((logs) =>
      Effect.gen(function*() {
        const ses = yield* fakeSes()
        let lookups = 0
        const noCredentials = () => {
          lookups++
          return Promise.reject(new Error("Could not load credentials from any providers"))
        }
        yield* Effect.gen(function*() {
          yield* remove(["hamlet@zulip.example"])
          yield* remove(["othello@zulip.example"])
        }).pipe(Effect.provide(SesSuppressionList.layer({ region: "us-east-1", endpoint: ses.url, credentials: noCredentials })))
        assert.deepStrictEqual(ses.requests, [])
        assert.strictEqual(lookups, 1)
        assert.deepStrictEqual(logs.map((line) => [line.level, line.message]), [[
          "Warn",
          "Removing recipients from the SES suppression list is off: no AWS credentials (Error: Could not load credentials from any providers)"
        ]])
      })
    ))

  it.effect("waits at most 3 seconds for credentials to resolve", () =>
    withCapturedLogs((logs) =>
      Effect.gen(function*() {
        const ses = yield* fakeSes()
        let asked: () => void = () => undefined
        const credentialsAsked = new Promise<void>((resolve) => asked = resolve)
        const neverResolves = () => {
          asked()
          return new Promise<never>(() => undefined)
        }
        const removal = yield* Effect.forkChild(remove(["hamlet@zulip.example"]).pipe(
          Effect.provide(SesSuppressionList.layer({ region: "us-east-1", endpoint: ses.url, credentials: neverResolves }))
        ))
        yield* Effect.promise(() => credentialsAsked)
        yield* TestClock.adjust("3 seconds")
        yield* Fiber.join(removal)
        assert.deepStrictEqual(ses.requests, [])
        assert.deepStrictEqual(logs.map((line) => [line.level, line.message]), [[
          "Warn",
          "Removing recipients from the SES suppression list is off: no AWS credentials resolved within 3s"
        ]])
      })
    ))
})
