/**
 * Header values an event gives as they are (`message_id`, `date`, `context.unsubscribe_link`) and its addresses,
 * refused at decoding (or at parsing, for addresses) with a message naming the field, when they are not what their
 * header's grammar allows; Zulip's own events still decode.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { parseAddressField } from "../src/domain/addresses.ts"
import { decodeEmailEvent } from "../src/domain/EmailEvent.ts"
import { dateProblem } from "../src/domain/headerValues.ts"
import { hasZulipReference, zulipEventsDir } from "./support/zulipReference.ts"

const event = (fields: Record<string, unknown>) => ({ subject: "Hi", text: "t", to_emails: ["x@zulip.example"], ...fields })

/** The `InvalidEvent` an event is refused with. */
const refusal = (fields: Record<string, unknown>) => Effect.flip(decodeEmailEvent(event(fields)))

const accepts = (fields: Record<string, unknown>) => Effect.asVoid(decodeEmailEvent(event(fields)))

/** Decoding fails naming the field (`path`'s first segment), with `path` and `problem` in one short message. */
const refusedAt = (path: string, fields: Record<string, unknown>, problem: string) =>
  Effect.gen(function*() {
    const error = yield* refusal(fields)
    assert.strictEqual(error.field, path.split(".")[0])
    assert.include(error.message, `${path}: `)
    assert.include(error.message, problem)
    assert.isBelow(error.message.length, 400)
  })

describe("message_id", () => {
  it.effect.each([
    "<abc@producer.example>",
    "abc@producer.example",
    "<20240618140312.1234.5678@zulip.example.com>",
    "<a.b+c/d=e@[127.0.0.1]>",
    `<${"a".repeat(980)}@x.example>`
  ])("accepts one msg-id, with or without its angle brackets, at most 998 octets: %s", (id) => accepts({ message_id: id }))

  it.effect.each([
    ["a space", "<a b@x.example>", "holds U+0020"],
    ["a second >", "<a@x.example>>", "is not one msg-id"],
    ["a > inside", "<a>@x.example>", "is not one msg-id"],
    ["two ids", "<a@x.example><b@x.example>", "is not one msg-id"],
    ["one bracket", "<a@x.example", "is not one msg-id"],
    ["no @", "<abc>", "is not one msg-id"],
    ["two @", "a@b@x.example", "is not one msg-id"],
    ["U+2028", "<a\u2028@x.example>", "holds U+2028"],
    ["CR LF", "<a@x.example>\r\nBcc: v@evil.example", "holds U+000D"],
    ["non-ASCII", "<é@x.example>", "holds U+00E9"],
    ["100,000 characters", `<${"a".repeat(100_000)}@x.example>`, "is 100012 octets long; a Message-ID is at most 998"]
  ])("refuses %s", ([, id, problem]) => refusedAt("message_id", { message_id: id }, problem))
})

describe("date", () => {
  it.each([
    "Tue, 04 Mar 2025 16:09:25 +0000",
    "Sun, 29 Nov 2026 12:00:00 -0000",
    "4 Mar 2025 16:09 +0100",
    "tue, 4 mar 2025 16:09:25 -0830",
    "Tue,04 Mar 2025 16:09:25 GMT",
    "Fri, 21 Nov 97 09:55:06 EST",
    "Thu, 13 Feb 1969 23:32:54 Z",
    "Sat, 29 Feb 2024 00:00:60 UT",
    "Mon, 04 Mar 2025  16 : 09 : 25   PDT",
    "Wed, 02 Dec 2026 23:32:03 +0000 (UTC)"
  ])("accepts %j", (date) => {
    assert.isUndefined(dateProblem(date))
  })

  it.each([
    ["Bcc: 2020", "is not an RFC 2822 date"],
    ["yesterday", "is not an RFC 2822 date"],
    ["2025-03-04T16:09:25Z", "is not an RFC 2822 date"],
    ["Tue, 04 Mar 2025 16:09:25", "is not an RFC 2822 date"],
    ["Tue, 04 Mar 2025 16:09:25 +0000 Bcc: x@evil.example", "is not an RFC 2822 date"],
    ["Tue, 04 Mar 2025 16:09:25 +0000, Wed, 05 Mar 2025 16:09:25 +0000", "is not an RFC 2822 date"],
    ["Tue, 04 Mar 2025 16:09:25 J", "is not an RFC 2822 date"],
    ["Tue, 04 Mrz 2025 16:09:25 +0000", "is not an RFC 2822 date"],
    ["Xyz, 04 Mar 2025 16:09:25 +0000", "is not an RFC 2822 date"],
    ["(c) 04 Mar 2025 16:09:25 +0000", "is not an RFC 2822 date"],
    ["Wed, 02 Dec 2026 23:32:03 +0000 (UTC) junk", "is not an RFC 2822 date"],
    ["Wed, 02 Dec 2026 23:32:03 +0000 (a (nested) comment)", "is not an RFC 2822 date"],
    ["Sat, 30 Feb 2024 10:00:00 +0000", "there is no 30 Feb 2024"],
    ["Sat, 00 Feb 2024 10:00:00 +0000", "there is no 00 Feb 2024"],
    ["Sat, 29 Feb 2023 10:00:00 +0000", "there is no 29 Feb 2023"],
    ["Mon, 04 Mar 1899 10:00:00 +0000", "there is no 04 Mar 1899"],
    ["Tue, 04 Mar 2025 24:00:00 +0000", "out of range"],
    ["Tue, 04 Mar 2025 16:60:00 +0000", "out of range"],
    ["Tue, 04 Mar 2025 16:09:61 +0000", "out of range"],
    ["Tue, 04 Mar 2025 16:09:25 +0060", "out of range"],
    ["Tue, 04 Mar 2025 16:09:25 +0000\r\nBcc: x@evil.example", "control character U+000D"],
    ["Tue, 04 Mar 2025 16:09:25 +0000\u2028", "control character U+2028"]
  ])("refuses %j", (date, problem) => {
    assert.include(dateProblem(date), problem)
  })

  it.effect("is refused at decoding, naming the field; \"Bcc: 2020\" never becomes a Date header", () =>
    Effect.gen(function*() {
      const error = yield* refusal({ date: "Bcc: 2020" })
      assert.strictEqual(error.field, "date")
      assert.strictEqual(
        error.message,
        "invalid email event: date: \"Bcc: 2020\" is not an RFC 2822 date (e.g. \"Tue, 04 Mar 2025 16:09:25 +0000\")"
      )
      yield* accepts({ date: "Tue, 04 Mar 2025 16:09:25 +0000" })
      yield* accepts({ date: null })
    }))
})

describe("context.unsubscribe_link", () => {
  it.effect.each([
    "https://acme.zulip.example.com/accounts/unsubscribe/login/4ckvxqr6uj7eaofnf3lf5oq3",
    "http://zulip.example/u?a=1&b=2#x",
    "mailto:unsubscribe@zulip.example?subject=unsubscribe"
  ])("accepts one http(s) or mailto URI: %s", (link) => accepts({ context: { unsubscribe_link: link } }))

  it.effect.each([
    ["a > that would add a second URI", "https://x.example/u>, <mailto:a@evil.example", "holds U+0020"],
    ["a > without spaces", "https://x.example/u><mailto:a@evil.example", "holds \">\""],
    ["a <", "https://x.example/<u", "holds \"<\""],
    ["a comma", "https://x.example/u,mailto:a@evil.example", "holds \",\""],
    ["a space", "https://x.example/a b", "holds U+0020"],
    ["CR LF", "https://x.example/u\r\nBcc: v@evil.example", "holds U+000D"],
    ["a lone LF", "https://x.example/u\n", "holds U+000A"],
    ["a tab", "https://x.example/\tu", "holds U+0009"],
    ["another scheme", "javascript:alert(1)", "is not an http(s) or mailto URL"],
    ["no URL", "not-a-url", "is not an http(s) or mailto URL"],
    ["a number", 42, "must be an http(s) or mailto URL"],
    ["null", null, "must be an http(s) or mailto URL"]
  ])("refuses %s", ([, link, problem]) =>
    refusedAt("context.unsubscribe_link", { context: { unsubscribe_link: link } }, String(problem)))
})

describe("addresses of an event", () => {
  it.effect.each([
    ["an address literal", "a@[127.0.0.1]", "has an address literal for its domain"],
    ["an IPv6 literal", "Name <a@[IPv6:::1]>", "has an address literal for its domain"],
    ["a label starting with -", "a@-zulip.example", "has the domain label \"-zulip\""],
    ["a label ending with -", "a@zulip-.example", "has the domain label \"zulip-\""],
    ["a last label ending with -", "a@zulip.example-", "has the domain label \"example-\""],
    ["a 65-octet local part", `${"a".repeat(65)}@zulip.example`, "has a local part of 65 octets; at most 64"],
    ["a 33-character local part of 66 octets", `${"é".repeat(33)}@zulip.example`, "has a local part of 66 octets"],
    ["a quoted local part of 65 octets", `"${"a b".repeat(21)}"@zulip.example`, "has a local part of 65 octets"]
  ])("refuses %s", ([, address, problem]) =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(parseAddressField("to_emails", address, { withName: true, what: "to_emails[0]" }))
      assert.strictEqual(error.field, "to_emails")
      assert.include(error.message, `to_emails[0] ${JSON.stringify(address)} ${problem}`)
    }))

  it.effect("accepts 64 octets, hyphens inside labels and internationalised domains", () =>
    Effect.gen(function*() {
      for (const address of [`${"a".repeat(64)}@zulip.example`, "a@my-zulip.x-y.example", "jö@exämple.com", "a@localhost"]) {
        yield* parseAddressField("to_emails", address, { withName: true })
      }
    }))
})

describe.runIf(hasZulipReference)("Zulip's events", () => {
  it.effect("still decode, every one (unsubscribe links, Message-ID-less, dated or not)", () =>
    Effect.gen(function*() {
      const files = readdirSync(zulipEventsDir).filter((name) => name !== "realms.json")
      assert.isNotEmpty(files)
      for (const file of files) {
        yield* decodeEmailEvent(JSON.parse(readFileSync(join(zulipEventsDir, file), "utf8")))
      }
    }))
})
