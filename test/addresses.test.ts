import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import emailAddresses from "email-addresses"
import fc from "fast-check"
import addressparser from "nodemailer/lib/addressparser"
import {
  controlCharacterIn,
  formatAddressPair,
  formatAddrSpec,
  formatMailbox,
  hostWithoutPort,
  isSurelyShort,
  limitedMailbox,
  type Mailbox,
  MAX_ADDRESS_HEADER_LENGTH,
  parseAddressField,
  parseMailbox,
  sanitizedHeaderLength
} from "../src/domain/addresses.ts"

const mailbox = (input: string): Mailbox => {
  const parsed = parseMailbox(input)
  assert.isNotNull(parsed, input)
  return parsed!
}

describe("controlCharacterIn", () => {
  it.each([
    ["CR", "a\rb", "U+000D"],
    ["LF", "a\nb", "U+000A"],
    ["NUL", "a\u0000", "U+0000"],
    ["tab", "a\tb", "U+0009"],
    ["DEL", "a\u007f", "U+007F"],
    ["C1 next line", "a\u0085b", "U+0085"],
    ["line separator", "a\u2028b", "U+2028"],
    ["paragraph separator", "a\u2029b", "U+2029"]
  ])("finds %s", (_, value, expected) => {
    assert.strictEqual(controlCharacterIn(value), expected)
  })

  it("accepts ordinary text in any script", () => {
    assert.isNull(controlCharacterIn("Zülip Dév 澳 🙂 \"quoted\", <angle>"))
  })
})

describe("parseMailbox", () => {
  it("reads bare and named addresses, quoted names and local parts, and internationalised addresses", () => {
    assert.deepStrictEqual(parseMailbox("hamlet@zulip.example"), {
      name: "",
      address: "hamlet@zulip.example",
      local: "hamlet",
      domain: "zulip.example"
    })
    assert.strictEqual(mailbox("King Hamlet <hamlet@zulip.example>").name, "King Hamlet")
    assert.strictEqual(mailbox("\"Hamlet, King\" <hamlet@zulip.example>").name, "Hamlet, King")
    assert.strictEqual(mailbox("\"john doe\"@example.com").address, "\"john doe\"@example.com")
    assert.strictEqual(mailbox("Jöhn <jö@exämple.com>").address, "jö@exämple.com")
    assert.strictEqual(mailbox("noreply@localhost").domain, "localhost")
  })

  it.each([
    "notanaddress",
    "@zulip.example",
    "hamlet@",
    "hamlet@@zulip.example",
    "a..b@zulip.example",
    ".hamlet@zulip.example",
    "hamlet@zulip.example>",
    "hamlet@zulip.example junk",
    "foo hamlet@zulip.example",
    "a@zulip.example, b@zulip.example",
    "group: a@zulip.example;",
    "hamlet@zulip.example\r\nBcc: victim@evil.example",
    "King\u2028Hamlet <hamlet@zulip.example>",
    ""
  ])("refuses %j", (input) => {
    assert.isNull(parseMailbox(input))
  })
})

describe("parseMailbox's shortcut for plain addresses", () => {
  /** What the RFC 5322 grammar alone reads, as `parseMailbox` reports it. */
  const byGrammar = (input: string): Mailbox | null => {
    const parsed = emailAddresses({ input, startAt: "mailbox", rfc6532: true, strict: true })
    const found = parsed?.addresses.length === 1 ? parsed.addresses[0] : undefined
    if (found === undefined || found.type !== "mailbox") return null
    return { name: found.name ?? "", address: formatAddrSpec(found.local, found.domain), local: found.local, domain: found.domain }
  }

  it("reads every valid address exactly as the grammar does", () => {
    fc.assert(fc.property(fc.emailAddress(), (input) => {
      assert.deepStrictEqual(parseMailbox(input), byGrammar(input), input)
    }), { numRuns: 2_000 })
  })

  it("accepts and refuses near misses exactly as the grammar does", () => {
    // dots, hyphens and @ in every position, plus characters that only the grammar's other forms allow
    const nearMiss = fc.string({ unit: fc.constantFrom("a", "Z", "0", ".", "-", "@", "_", "+", "\"", " ", "[", "]", "é"), maxLength: 12 })
    fc.assert(fc.property(nearMiss, (input) => {
      assert.deepStrictEqual(parseMailbox(input), byGrammar(input), JSON.stringify(input))
    }), { numRuns: 5_000 })
  })
})

describe("parseAddressField", () => {
  it.effect("names the field and the address when the address is invalid", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(parseAddressField("to_emails", "not an address", { withName: true, what: "to_emails[1]" }))
      assert.strictEqual(error._tag, "InvalidEvent")
      assert.strictEqual(error.field, "to_emails")
      assert.include(error.message, "to_emails[1]")
      assert.include(error.message, "\"not an address\"")
    }))

  it.effect("refuses a display name where only a bare address is allowed", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(parseAddressField("from_address", "Evil <evil@example.com>", { withName: false }))
      assert.strictEqual(error.field, "from_address")
      assert.include(error.message, "bare address")
    }))

  it.effect("reports a control character as such, escaped so the log line stays one line", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(
        parseAddressField("reply_to_email", "a@example.com\r\nBcc: x@example.com", { withName: true })
      )
      assert.strictEqual(error.field, "reply_to_email")
      assert.include(error.message, "U+000D")
      assert.notInclude(error.message, "\n")
    }))
})

describe("formatMailbox", () => {
  it("writes the name as Python's Address does: quoted only when it holds specials", () => {
    assert.strictEqual(formatMailbox("King Hamlet", "hamlet@zulip.example"), "King Hamlet <hamlet@zulip.example>")
    assert.strictEqual(formatMailbox("Hamlet, King", "h@zulip.example"), "\"Hamlet, King\" <h@zulip.example>")
    assert.strictEqual(formatMailbox("say \"hi\" \\o/", "h@zulip.example"), "\"say \\\"hi\\\" \\\\o/\" <h@zulip.example>")
    assert.strictEqual(formatMailbox("澳大利亚", "h@zulip.example"), "澳大利亚 <h@zulip.example>")
    assert.strictEqual(formatMailbox("", "h@zulip.example"), "h@zulip.example")
  })

  it("is read back to the same name and address by nodemailer's parser and by ours", () => {
    const name = fc.string({ unit: "grapheme", maxLength: 40 }).filter((value) => controlCharacterIn(value) === null)
    const address = fc.constantFrom("hamlet@zulip.example", "\"john doe\"@example.com", "jö@exämple.com", "a+b@[127.0.0.1]")
    fc.assert(
      fc.property(name, address, (name, address) => {
        const formatted = formatMailbox(name, mailbox(address).address)
        const [read, ...more] = addressparser(formatted)
        assert.lengthOf(more, 0)
        assert.strictEqual(read!.name, name.trim())
        assert.strictEqual(read!.address, mailbox(address).address)
        assert.strictEqual(mailbox(formatted).address, mailbox(address).address)
      }),
      { numRuns: 500 }
    )
  })
})

describe("Zulip's 320-character rule", () => {
  // `len(sanitize_address(str(Address(name, address)), "utf-8"))` computed by CPython 3.11's email package and
  // Django's sanitize_address, the values Zulip compares with 320
  it.each([
    ["澳".repeat(61), "hamlet@zulip.com", 317],
    ["澳".repeat(62), "hamlet@zulip.com", 321],
    ["a".repeat(280), "noreply@zulip.example.com", 308],
    ["King Hamlet", "hamlet@zulip.com", 30],
    ["word ".repeat(40), "hamlet@zulip.com", 220],
    ["Smith, John; Jr. ".repeat(8), "hamlet@zulip.com", 158],
    ["Développeurs de la plateforme Zulip ".repeat(4), "hamlet@zulip.com", 222],
    ["🙂".repeat(30), "hamlet@zulip.com", 219],
    ["  spaced   out  ", "hamlet@zulip.com", 29],
    ["\"quoted\" \\ name", "hamlet@zulip.com", 39],
    ["Bob", "jö@exämple.com", 41],
    ["", "hamlet@bücher.example", 28]
  ])("measures %j <%s> as Django does (%i)", (name, address, expected) => {
    assert.strictEqual(sanitizedHeaderLength(name, mailbox(address)), expected)
  })

  it("skips the exact length only for headers that cannot reach 320 (quotes, escapes and folding included)", () => {
    // names full of what makes the header longer: quotes, backslashes, specials, runs of spaces to fold at
    const name = fc.string({ unit: fc.constantFrom("a", "Z", " ", "  ", "\"", "\\", ",", ".", "(", "<"), maxLength: 120 })
    fc.assert(fc.property(name, fc.emailAddress(), (displayName, address) => {
      const box = mailbox(address)
      if (isSurelyShort(displayName, box)) {
        assert.isAtMost(sanitizedHeaderLength(displayName, box), MAX_ADDRESS_HEADER_LENGTH, `${displayName} <${address}>`)
      }
    }), { numRuns: 3_000 })
    assert.isFalse(isSurelyShort("澳", mailbox("hamlet@zulip.com")), "non-ASCII names are always measured")
  })

  it("keeps a From name of exactly 320 characters and drops one of 321 (test_limited_from_length)", () => {
    const noreply = mailbox("noreply@zulip.example.com")
    const name = "a".repeat(MAX_ADDRESS_HEADER_LENGTH - noreply.address.length - 3)
    assert.strictEqual(limitedMailbox(name, noreply), `${name} <${noreply.address}>`)
    assert.strictEqual(limitedMailbox(name + "a", noreply), noreply.address)
  })

  it("keeps 61 \"澳\" and drops 62 (test_limited_to_length)", () => {
    const hamlet = mailbox("hamlet@zulip.com")
    assert.strictEqual(limitedMailbox("澳".repeat(61), hamlet), `${"澳".repeat(61)} <hamlet@zulip.com>`)
    assert.strictEqual(limitedMailbox("澳".repeat(62), hamlet), "hamlet@zulip.com")
  })
})

describe("formatAddressPair (List-Id)", () => {
  it("writes Python's formataddr: plain, quoted, or one RFC 2047 word", () => {
    assert.strictEqual(formatAddressPair("Zulip Dev", "zulip.example.com"), "Zulip Dev <zulip.example.com>")
    assert.strictEqual(formatAddressPair("Zulip, Inc.", "zulip.example.com"), "\"Zulip, Inc.\" <zulip.example.com>")
    assert.strictEqual(formatAddressPair("Zülip, Inc.", "zulip.example.com"), "=?utf-8?b?WsO8bGlwLCBJbmMu?= <zulip.example.com>")
    assert.strictEqual(formatAddressPair("Zülip Dev", "zulip.example.com"), "=?utf-8?q?Z=C3=BClip_Dev?= <zulip.example.com>")
    assert.strictEqual(formatAddressPair("", "zulip.example.com"), "zulip.example.com")
  })
})

describe("hostWithoutPort", () => {
  it("drops the port of EXTERNAL_HOST", () => {
    assert.strictEqual(hostWithoutPort("zulip.example.com:9991"), "zulip.example.com")
    assert.strictEqual(hostWithoutPort("zulip.example.com"), "zulip.example.com")
    assert.strictEqual(hostWithoutPort("[::1]:9991"), "[::1]")
  })
})
