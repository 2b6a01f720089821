import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Exit, Layer, Logger } from "effect"
import { TestClock } from "effect/testing"
import fc from "fast-check"
import { controlCharacterIn, parseMailbox } from "../src/domain/addresses.ts"
import { decodeEmailEvent } from "../src/domain/EmailEvent.ts"
import type { InvalidEvent, TemplateError } from "../src/domain/errors.ts"
import type { OutgoingEmail } from "../src/domain/OutgoingEmail.ts"
import type { Realm, User } from "../src/domain/Realm.ts"
import { messageBytes } from "../src/smtp/nodemailerMessage.ts"
import * as ZulipEmailBuilder from "../src/email/ZulipEmailBuilder.ts"
import { EmailBuilder } from "../src/email/EmailBuilder.ts"
import { hamlet, othello, realm } from "./support/inMemory.ts"
import { captureLogs } from "./support/logCapture.ts"
import { templateTree } from "./support/templateTree.ts"

const externalHost = "zulip.example.com:9991"
const noreply = "noreply@zulip.example.com"
const rootRealm: Realm = { id: 1, stringId: "", name: "Root Org", deactivated: false }

interface Recipients {
  readonly realm?: Realm | null
  readonly users?: ReadonlyArray<User>
}

const buildWith = (options: ZulipEmailBuilder.ZulipEmailBuilderOptions = {}) =>
(
  event: Record<string, unknown>,
  { realm = null, users = [] }: Recipients = {}
): Effect.Effect<OutgoingEmail, InvalidEvent | TemplateError> =>
  Effect.gen(function*() {
    const builder = yield* EmailBuilder
    return yield* builder.build({ event: yield* decodeEmailEvent(event), realm, users })
  }).pipe(Effect.provide(ZulipEmailBuilder.layer({ externalHost, ...options })))

const build = buildWith()

/** A pre-rendered event: no template, so header rules are tested on their own. */
const rendered = (fields: Record<string, unknown> = {}) => ({
  subject: "Hello",
  text: "Body",
  to_emails: ["hamlet@zulip.example"],
  ...fields
})
const toUsers = (fields: Record<string, unknown> = {}) => ({ ...rendered(), to_emails: null, to_user_ids: [10], ...fields })

const headerOf = (email: OutgoingEmail, name: string): string | undefined =>
  email.headers.find(([key]) => key === name)?.[1]

const failureOf = <A>(effect: Effect.Effect<A, InvalidEvent | TemplateError>) => Effect.flip(effect)

describe("From and Reply-To", () => {
  it.effect("default to Zulip <NOREPLY>, replying to NOREPLY, sent from NOREPLY", () =>
    Effect.gen(function*() {
      const email = yield* build(rendered())
      assert.strictEqual(email.from, `Zulip <${noreply}>`)
      assert.deepStrictEqual(email.replyTo, [noreply])
      assert.strictEqual(email.envelope.from, noreply)
    }))

  it.effect("resolve the NO_REPLY, SUPPORT and TOKENIZED_NO_REPLY placeholders", () =>
    Effect.gen(function*() {
      const noReply = yield* build(rendered({ from_name: "Zulip Account Security", from_address: "NO_REPLY" }))
      assert.strictEqual(noReply.from, `Zulip Account Security <${noreply}>`)
      assert.deepStrictEqual(noReply.replyTo, [noreply])

      const support = yield* build(rendered({ from_address: "SUPPORT" }))
      assert.strictEqual(support.from, "Zulip <support@zulip.example.com>")
      assert.deepStrictEqual(support.replyTo, [])
      assert.strictEqual(support.envelope.from, noreply)

      const first = yield* build(rendered({ from_address: "TOKENIZED_NO_REPLY" }))
      const second = yield* build(rendered({ from_address: "TOKENIZED_NO_REPLY" }))
      assert.match(first.from, /^Zulip <noreply-[0-9a-f]{24}@zulip\.example\.com>$/)
      assert.notStrictEqual(first.from, second.from)
      assert.deepStrictEqual(first.replyTo, [])
      assert.strictEqual(first.envelope.from, noreply)
    }))

  it.effect("use plain NOREPLY for TOKENIZED_NO_REPLY when ADD_TOKENS_TO_NOREPLY_ADDRESS is off", () =>
    Effect.gen(function*() {
      const email = yield* buildWith({ addTokensToNoreplyAddress: false })(rendered({ from_address: "TOKENIZED_NO_REPLY" }))
      assert.strictEqual(email.from, `Zulip <${noreply}>`)
      assert.deepStrictEqual(email.replyTo, [noreply])
    }))

  it.effect("read the address settings like Zulip's parseaddr", () =>
    Effect.gen(function*() {
      const email = yield* buildWith({
        noreplyEmailAddress: "Mailer <mailer@chat.example.org>",
        zulipAdministrator: "Admins <admins@chat.example.org>",
        tokenizedNoreplyEmailAddress: "bounce+{token}@chat.example.org"
      })(rendered({ from_address: "SUPPORT", context: { unsubscribe_link: "https://chat.example.org/u" } }))
      assert.strictEqual(email.from, "Zulip <admins@chat.example.org>")
      assert.strictEqual(email.envelope.from, "mailer@chat.example.org")
      const tokenized = yield* buildWith({ tokenizedNoreplyEmailAddress: "bounce+{token}@chat.example.org" })(
        rendered({ from_address: "TOKENIZED_NO_REPLY" })
      )
      assert.match(tokenized.from, /^Zulip <bounce\+[0-9a-f]{24}@chat\.example\.org>$/)
    }))

  it.effect("take a producer's from_address and reply_to_email", () =>
    Effect.gen(function*() {
      const email = yield* build(rendered({
        from_name: "Security, Zulip",
        from_address: "security@zulip.example.com",
        reply_to_email: "Help Desk <help@zulip.example.com>"
      }))
      assert.strictEqual(email.from, "\"Security, Zulip\" <security@zulip.example.com>")
      assert.deepStrictEqual(email.replyTo, ["Help Desk <help@zulip.example.com>"])
      assert.strictEqual(email.envelope.from, noreply)
      const noReplyTo = yield* build(rendered({ from_address: "security@zulip.example.com" }))
      assert.deepStrictEqual(noReplyTo.replyTo, [])
    }))

  it.effect("refuse an invalid from_address or reply_to_email, naming the field", () =>
    Effect.gen(function*() {
      const from = yield* failureOf(build(rendered({ from_address: "not an address" })))
      assert.strictEqual(from._tag === "InvalidEvent" ? from.field : null, "from_address")
      const named = yield* failureOf(build(rendered({ from_address: "Evil <evil@example.com>" })))
      assert.strictEqual(named._tag === "InvalidEvent" ? named.field : null, "from_address")
      const replyTo = yield* failureOf(build(rendered({ reply_to_email: "" })))
      assert.strictEqual(replyTo._tag === "InvalidEvent" ? replyTo.field : null, "reply_to_email")
    }))

  it.effect("keep a From name of exactly 320 characters and drop the name at 321 (test_limited_from_length)", () =>
    Effect.gen(function*() {
      const name = "a".repeat(320 - noreply.length - 3)
      assert.strictEqual((yield* build(rendered({ from_name: name }))).from, `${name} <${noreply}>`)
      assert.strictEqual((yield* build(rendered({ from_name: name + "a" }))).from, noreply)
    }))
})

describe("settings", () => {
  it.effect("are read from Zulip's environment variables by layerConfig", () =>
    Effect.gen(function*() {
      const dir = yield* templateTree({ "zerver/emails/vars.subject.txt": "Vars", "zerver/emails/vars.txt": "{{ physical_address }}" })
      const env = ConfigProvider.fromEnv({
        env: {
          EXTERNAL_HOST: "chat.example.org:8443",
          ZULIP_ADMINISTRATOR: "Admins <admins@chat.example.org>",
          ADD_TOKENS_TO_NOREPLY_ADDRESS: "false",
          PHYSICAL_ADDRESS: "1 Main St",
          TEMPLATES_DIR: dir,
          TEMPLATES_RELOAD: "true"
        }
      })
      const email = yield* Effect.gen(function*() {
        const builder = yield* EmailBuilder
        const event = yield* decodeEmailEvent({
          template_prefix: "zerver/emails/vars",
          to_emails: ["a@example.com"],
          from_address: "TOKENIZED_NO_REPLY",
          language: "en"
        })
        return yield* builder.build({ event, realm: rootRealm, users: [] })
      }).pipe(Effect.provide(ZulipEmailBuilder.layerConfig.pipe(Layer.provide(ConfigProvider.layer(env)))))
      assert.strictEqual(email.from, "Zulip <noreply@chat.example.org>")
      assert.strictEqual(email.envelope.from, "noreply@chat.example.org")
      assert.strictEqual(headerOf(email, "List-Id"), "Root Org <chat.example.org:8443>")
      assert.match(email.messageId, /@chat\.example\.org>$/)
      assert.strictEqual(email.text, "1 Main St")
    }))

  it.effect("stop the layer at start-up, naming the setting, when an address setting is invalid", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(Layer.build(ZulipEmailBuilder.layer({ noreplyEmailAddress: "not an address" })))
      const reason = Exit.isFailure(exit) ? exit.cause.reasons[0] : undefined
      assert.strictEqual(reason?._tag, "Die")
      assert.include(reason?._tag === "Die" ? (reason.defect as Error).message : "", "NOREPLY_EMAIL_ADDRESS")
    }))
})

describe("the templates and catalogs directories", () => {
  const startFailure = (options: ZulipEmailBuilder.ZulipEmailBuilderOptions) =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(Layer.build(ZulipEmailBuilder.layer(options)))
      const reason = Exit.isFailure(exit) ? exit.cause.reasons[0] : undefined
      return reason?._tag === "Die" ? (reason.defect as Error).message : "started"
    }).pipe(Effect.scoped)

  it.effect("stop the layer at start-up, naming the setting and the path, when missing, unreadable or empty", () =>
    Effect.gen(function*() {
      const dir = yield* templateTree({ "templates/zerver/emails/a.subject.txt": "A", "templates/zerver/emails/a.txt": "A", "empty/readme.txt": "x" })
      const missing = yield* startFailure({ templatesDir: `${dir}/nowhere` })
      assert.include(missing, "TEMPLATES_DIR")
      assert.include(missing, `${dir}/nowhere`)
      const empty = yield* startFailure({ templatesDir: `${dir}/empty` })
      assert.include(empty, "TEMPLATES_DIR")
      assert.include(empty, "no email templates")
      const locale = yield* startFailure({ templatesDir: `${dir}/templates`, localeDir: `${dir}/no-locale` })
      assert.include(locale, "LOCALE_DIR")
      assert.include(locale, `${dir}/no-locale`)
      // without LOCALE_DIR and without locale/ beside the templates: English, said once
      const logs = captureLogs()
      const started = yield* startFailure({ templatesDir: `${dir}/templates` }).pipe(Effect.provide(logs.layer))
      assert.strictEqual(started, "started")
      assert.deepStrictEqual(logs.lines.map((line) => line.level), ["Warn"])
      assert.include(logs.lines[0]!.message, "LOCALE_DIR")
    }))
})

describe("recipients", () => {
  it.effect("use to_emails as given and put the bare addresses on the envelope", () =>
    Effect.gen(function*() {
      const email = yield* build(rendered({
        to_emails: ["hamlet@zulip.example", "King Hamlet <king@zulip.example>", "\"Hamlet, King\" <k2@zulip.example>"]
      }))
      assert.deepStrictEqual(email.to, [
        "hamlet@zulip.example",
        "King Hamlet <king@zulip.example>",
        "\"Hamlet, King\" <k2@zulip.example>"
      ])
      assert.deepStrictEqual(email.envelope.to, ["hamlet@zulip.example", "king@zulip.example", "k2@zulip.example"])
    }))

  it.effect("refuse an invalid to_emails entry, naming the field and the address", () =>
    Effect.gen(function*() {
      const error = yield* failureOf(build(rendered({ to_emails: ["hamlet@zulip.example", "hamlet@@zulip"] })))
      assert.strictEqual(error._tag === "InvalidEvent" ? error.field : null, "to_emails")
      assert.include(error.message, "to_emails[1]")
      assert.include(error.message, "hamlet@@zulip")
    }))

  it.effect("address users as \"Full Name <delivery_email>\"", () =>
    Effect.gen(function*() {
      const email = yield* build(toUsers({ to_user_ids: [10, 11] }), { realm, users: [hamlet, othello] })
      assert.deepStrictEqual(email.to, ["King Hamlet <hamlet@zulip.example>", "Othello <othello@zulip.example>"])
      assert.deepStrictEqual(email.envelope.to, ["hamlet@zulip.example", "othello@zulip.example"])
    }))

  it.effect("keep a name of 61 \"澳\" and drop one of 62 (test_limited_to_length)", () =>
    Effect.gen(function*() {
      const user = (fullName: string): User => ({ ...hamlet, fullName, deliveryEmail: "hamlet@zulip.com" })
      const kept = yield* build(toUsers(), { realm, users: [user("澳".repeat(61))] })
      assert.deepStrictEqual(kept.to, [`${"澳".repeat(61)} <hamlet@zulip.com>`])
      const dropped = yield* build(toUsers(), { realm, users: [user("澳".repeat(62))] })
      assert.deepStrictEqual(dropped.to, ["hamlet@zulip.com"])
    }))

  it.effect("refuse users of several realms when no realm_id says which; an explicit realm_id is used as given (Zulip)", () =>
    Effect.gen(function*() {
      const elsewhere: User = { ...othello, realmId: 3 }
      const mixed = yield* failureOf(build(toUsers({ to_user_ids: [10, 11] }), { users: [hamlet, elsewhere] }))
      assert.strictEqual(mixed._tag === "InvalidEvent" ? mixed.field : null, "to_user_ids")
      assert.include(mixed.message, "spans several realms")
      const explicit = yield* build(toUsers({ to_user_ids: [10, 11], realm_id: 2 }), { realm, users: [hamlet, elsewhere] })
      assert.strictEqual(explicit.realm, realm.stringId)
      assert.strictEqual(explicit.to.length, 2)
    }))

  it.effect("refuse a user whose name or delivery email is unsafe", () =>
    Effect.gen(function*() {
      const name = yield* failureOf(build(toUsers(), { realm, users: [{ ...hamlet, fullName: "Hamlet\r\nBcc: x@evil.example" }] }))
      assert.strictEqual(name._tag === "InvalidEvent" ? name.field : null, "to_user_ids")
      assert.include(name.message, "full name of user 10")
      const address = yield* failureOf(build(toUsers(), { realm, users: [{ ...hamlet, deliveryEmail: "Evil <e@evil.example>" }] }))
      assert.strictEqual(address._tag === "InvalidEvent" ? address.field : null, "to_user_ids")
    }))
})

describe("headers", () => {
  it.effect("set List-Id from the realm, with the root realm on EXTERNAL_HOST itself", () =>
    Effect.gen(function*() {
      const normal = yield* build(rendered({ realm_id: 2 }), { realm })
      assert.strictEqual(headerOf(normal, "List-Id"), "Zulip Dev <zulip.zulip.example.com:9991>")
      assert.strictEqual(normal.realm, "zulip")
      const root = yield* build(rendered({ realm_id: 1 }), { realm: rootRealm })
      assert.strictEqual(headerOf(root, "List-Id"), "Root Org <zulip.example.com:9991>")
      assert.strictEqual(root.realm, "")
      const quoted = yield* build(rendered(), { realm: { ...realm, name: "Zülip, Inc." } })
      assert.strictEqual(headerOf(quoted, "List-Id"), "=?utf-8?b?WsO8bGlwLCBJbmMu?= <zulip.zulip.example.com:9991>")
      const none = yield* build(rendered())
      assert.isUndefined(headerOf(none, "List-Id"))
      assert.isNull(none.realm)
    }))

  it.effect("add the unsubscribe headers from context.unsubscribe_link, without Post for remote servers", () =>
    Effect.gen(function*() {
      const link = "https://zulip.example.com/accounts/unsubscribe/abc"
      const email = yield* build(rendered({ realm_id: 2, context: { unsubscribe_link: link } }), { realm })
      assert.deepStrictEqual(email.headers, [
        ["List-Id", "Zulip Dev <zulip.zulip.example.com:9991>"],
        ["X-Auto-Response-Suppress", "All"],
        ["List-Unsubscribe", `<${link}>`],
        ["List-Unsubscribe-Post", "List-Unsubscribe=One-Click"]
      ])
      const remote = yield* build(rendered({ context: { unsubscribe_link: link, remote_server_email: "ops@x.example" } }))
      assert.deepStrictEqual(remote.headers, [["X-Auto-Response-Suppress", "All"], ["List-Unsubscribe", `<${link}>`]])
      const notRemote = yield* build(rendered({ context: { unsubscribe_link: link, remote_server_email: "" } }))
      assert.strictEqual(headerOf(notRemote, "List-Unsubscribe-Post"), "List-Unsubscribe=One-Click")
      const plain = yield* build(rendered())
      assert.deepStrictEqual(plain.headers, [["X-Auto-Response-Suppress", "All"]])
    }))

  it.effect("refuse an unsubscribe link that is not a URL", () =>
    Effect.gen(function*() {
      for (const link of ["javascript:alert(1)", "not a url", 42]) {
        const error = yield* failureOf(build(rendered({ context: { unsubscribe_link: link } })))
        assert.strictEqual(error._tag === "InvalidEvent" ? error.field : null, "context")
      }
    }))

  it.effect("keep the producer's Date, or stamp the build time from the Clock", () =>
    Effect.gen(function*() {
      const date = "Tue, 14 Nov 2023 10:00:00 +0100"
      assert.strictEqual((yield* build(rendered({ date }))).date, date)
      yield* TestClock.setTime(Date.UTC(2023, 10, 14, 22, 13, 20))
      assert.strictEqual((yield* build(rendered())).date, "Tue, 14 Nov 2023 22:13:20 -0000")
      const invalid = yield* failureOf(build(rendered({ date: "yesterday" })))
      assert.strictEqual(invalid._tag === "InvalidEvent" ? invalid.field : null, "date")
      const injected = yield* failureOf(build(rendered({ date: `${date}\r\nBcc: x@evil.example` })))
      assert.strictEqual(injected._tag === "InvalidEvent" ? injected.field : null, "date")
    }))

  it.effect("give every redelivery of an event the same Message-ID, and honour message_id", () =>
    Effect.gen(function*() {
      const first = yield* build(rendered({ context: { a: 1 } }))
      const retried = yield* build(rendered({ context: { a: 1 }, failed_tries: 2 }))
      const other = yield* build(rendered({ context: { a: 2 } }))
      assert.strictEqual(first.messageId, retried.messageId)
      assert.notStrictEqual(first.messageId, other.messageId)
      assert.match(first.messageId, /^<[0-9a-f]{32}@zulip\.example\.com>$/)
      assert.strictEqual((yield* build(rendered({ message_id: "abc@producer.example" }))).messageId, "<abc@producer.example>")
    }))
})

describe("templates", () => {
  const invitation = {
    template_prefix: "zerver/emails/invitation",
    to_emails: ["new.user@example.com"],
    from_address: "TOKENIZED_NO_REPLY",
    language: "en",
    context: {
      referrer_full_name: "Iago <b>the Admin</b> & co",
      referrer_email: "iago@zulip.example",
      activate_url: "https://zulip.example.com/join/abc/?a=1&b=2",
      referrer_realm_name: "Zulip Dev",
      corporate_enabled: false
    },
    realm_id: 2
  }

  it.effect("render the shipped invitation with CSS inlined and context values escaped in HTML only", () =>
    Effect.gen(function*() {
      const email = yield* build(invitation, { realm })
      assert.strictEqual(email.template, "invitation")
      assert.strictEqual(email.subject, "Iago <b>the Admin</b> & co invited you to join Zulip Dev on Zulip")
      assert.include(email.text, "https://zulip.example.com/join/abc/?a=1&b=2")
      assert.include(email.text, "Iago <b>the Admin</b> & co (iago@zulip.example)")
      assert.include(email.html, "Iago &lt;b&gt;the Admin&lt;/b&gt; &amp; co")
      assert.include(email.html, "href=\"https://zulip.example.com/join/abc/?a=1&amp;b=2\"")
      assert.notInclude(email.html, "<style>")
      assert.match(email.html ?? "", /<body style="[^"]*background-color: #f5f5f7/)
      assert.include(email.html, "https://zulip.example.com:9991/static/images/emails/email_logo.png")
    }))

  it.effect("give templates support_email, email_images_base_url and physical_address over the event's own", () =>
    Effect.gen(function*() {
      const dir = yield* templateTree({
        "zerver/emails/vars.subject.txt": "Vars",
        "zerver/emails/vars.txt": "{{ support_email }}|{{ email_images_base_url }}|{{ physical_address }}|{{ other }}"
      })
      const email = yield* buildWith({
        templatesDir: dir,
        zulipAdministrator: "help@zulip.example.com",
        physicalAddress: "1 Main St",
        emailImagesBaseUrl: "https://cdn.example/img"
      })({
        template_prefix: "zerver/emails/vars",
        to_emails: ["a@example.com"],
        language: "en",
        context: { support_email: "evil@evil.example", physical_address: "forged", other: "kept" }
      })
      assert.strictEqual(email.text, "help@zulip.example.com|https://cdn.example/img|1 Main St|kept")
      assert.isNull(email.html)
    }))

  it.effect("strip the rendered subject and remove its line breaks, refusing control characters from values", () =>
    Effect.gen(function*() {
      const dir = yield* templateTree({
        "zerver/emails/multi.subject.txt": "\n  Hello\r\n {{ name }}\n\n",
        "zerver/emails/multi.txt": "x"
      })
      const buildMulti = (name: string) =>
        buildWith({ templatesDir: dir })({
          template_prefix: "zerver/emails/multi",
          to_emails: ["a@example.com"],
          language: "en",
          context: { name }
        })
      assert.strictEqual((yield* buildMulti("Hamlet")).subject, "Hello Hamlet")
      for (const name of ["Hamlet\r\nBcc: x@evil.example", "Ham\tlet", "Ham\u2028let"]) {
        const error = yield* failureOf(buildMulti(name))
        assert.strictEqual(error._tag === "InvalidEvent" ? error.field : null, "subject")
      }
    }))

  it.effect("derive a missing .txt from the HTML", () =>
    Effect.gen(function*() {
      const dir = yield* templateTree({
        "zerver/emails/html_only.subject.txt": "Only HTML",
        "zerver/emails/html_only.html":
          "<style>p { color: red }</style><p>Hello <b>{{ name }}</b>,</p><p><a href=\"https://x.example/go\">continue</a></p>"
      })
      const email = yield* buildWith({ templatesDir: dir })({
        template_prefix: "zerver/emails/html_only",
        to_emails: ["a@example.com"],
        language: "en",
        context: { name: "Hamlet" }
      })
      assert.strictEqual(email.text, "Hello Hamlet,\n\ncontinue [https://x.example/go]")
      assert.include(email.html, "<p style=\"color: red;\">Hello <b>Hamlet</b>,</p>")
    }))

  it.effect("fail with a TemplateError naming the template and file", () =>
    Effect.gen(function*() {
      const missing = yield* failureOf(build({ ...invitation, template_prefix: "zerver/emails/no_such_template" }))
      assert.strictEqual(missing._tag, "TemplateError")
      assert.include(missing.message, "zerver/emails/no_such_template")
      assert.include(missing._tag === "TemplateError" ? missing.file : null, "no_such_template.subject.txt")
    }))

  it.effect("render in the event's language, else the first user's, else English with Zulip's warning", () =>
    Effect.gen(function*() {
      const dir = yield* templateTree({
        "templates/zerver/emails/hello.subject.txt": "{{ _(\"Hello\") }}",
        "templates/zerver/emails/hello.txt": "{% trans %}Hello {{ name }}{% endtrans %}",
        "locale/de/LC_MESSAGES/django.po": [
          "msgid \"\"",
          "msgstr \"Content-Type: text/plain; charset=UTF-8\\n\"",
          "",
          "msgid \"Hello\"",
          "msgstr \"Hallo\"",
          "",
          "msgid \"Hello %(name)s\"",
          "msgstr \"Hallo %(name)s\""
        ].join("\n")
      })
      // LOCALE_DIR defaults to <TEMPLATES_DIR>/../locale, Zulip's own layout
      const buildHello = buildWith({ templatesDir: `${dir}/templates` })
      const logs = captureLogs()
      const hello = { template_prefix: "zerver/emails/hello", to_user_ids: [10], context: { name: "Hamlet" } }
      const fromEvent = yield* buildHello({ ...hello, language: "de" }, { realm, users: [hamlet] })
      assert.deepStrictEqual([fromEvent.subject, fromEvent.text], ["Hallo", "Hallo Hamlet"])
      const fromUser = yield* buildHello(hello, { realm, users: [{ ...hamlet, defaultLanguage: "de" }, othello] })
      assert.deepStrictEqual([fromUser.subject, fromUser.text], ["Hallo", "Hallo Hamlet"])
      const english = yield* buildHello({ ...hello, language: "en" }, { realm, users: [hamlet] })
      assert.deepStrictEqual([english.subject, english.text], ["Hello", "Hello Hamlet"])
      assert.deepStrictEqual(logs.lines, [])
      const unknown = yield* buildHello(hello, { realm, users: [{ ...hamlet, defaultLanguage: null }] }).pipe(
        Effect.provide(logs.layer)
      )
      assert.strictEqual(unknown.subject, "Hello")
      assert.deepStrictEqual(logs.lines, [{ level: "Warn", message: "Missing language for email template 'zerver/emails/hello'" }])
    }))

  it.effect("fall back to English for a language without a catalog, saying so once per language", () =>
    Effect.gen(function*() {
      const dir = yield* templateTree({
        "templates/zerver/emails/hello.subject.txt": "{{ _(\"Hello\") }}",
        "templates/zerver/emails/hello.txt": "Hello",
        "locale/.keep": ""
      })
      const logs = captureLogs()
      const event = yield* decodeEmailEvent({ template_prefix: "zerver/emails/hello", to_emails: ["a@example.com"], language: "ja" })
      // one builder, as the worker has: its catalogs are loaded once
      const subjects = yield* Effect.gen(function*() {
        const builder = yield* EmailBuilder
        const first = yield* builder.build({ event, realm: null, users: [] })
        const second = yield* builder.build({ event, realm: null, users: [] })
        return [first.subject, second.subject]
      }).pipe(Effect.provide(ZulipEmailBuilder.layer({ externalHost, templatesDir: `${dir}/templates` })), Effect.provide(logs.layer))
      assert.deepStrictEqual(subjects, ["Hello", "Hello"])
      assert.lengthOf(logs.lines, 1)
      assert.include(logs.lines[0]!.message, "'ja'")
    }))

  it.effect("refuse a language that is not a language code, naming the field", () =>
    Effect.gen(function*() {
      const error = yield* failureOf(build({ ...invitation, language: "../../etc" }))
      assert.strictEqual(error._tag, "InvalidEvent")
      assert.strictEqual(error._tag === "InvalidEvent" ? error.field : null, "language")
    }))
})

describe("pre-rendered content", () => {
  it.effect("is sent as given, with a missing text derived from the HTML", () =>
    Effect.gen(function*() {
      const both = yield* build(rendered({ subject: "  Your report ", text: "Plain", html: "<p>Rich</p>" }))
      assert.strictEqual(both.subject, "Your report")
      assert.strictEqual(both.text, "Plain")
      assert.strictEqual(both.html, "<p>Rich</p>")
      assert.strictEqual(both.template, "(pre-rendered)")
      const htmlOnly = yield* build({ subject: "Report", html: "<h1>Report</h1><p>All good</p>", to_emails: ["a@example.com"] })
      assert.strictEqual(htmlOnly.text, "REPORT\n\nAll good")
    }))

  it.effect("refuses a subject with a line break", () =>
    Effect.gen(function*() {
      const error = yield* failureOf(build(rendered({ subject: "Hi\r\nBcc: x@evil.example" })))
      assert.strictEqual(error._tag === "InvalidEvent" ? error.field : null, "subject")
    }))

  it.effect("gives every message its own multipart boundary, which no part of the email predicts", () =>
    Effect.gen(function*() {
      const email = yield* build(rendered({ text: "Plain", html: "<p>Rich</p>" }))
      const boundaries = new Set<string>()
      for (let n = 0; n < 3; n++) {
        const raw = (yield* messageBytes(email)).toString("utf8")
        const boundary = /boundary="([^"]+)"/.exec(raw)?.[1]
        assert.isDefined(boundary)
        assert.include(raw, `\r\n--${boundary}--`)
        assert.notInclude(boundary!, email.messageId.slice(1, -1))
        boundaries.add(boundary!)
      }
      assert.strictEqual(boundaries.size, 3, "the same email composed three times gets three boundaries")
    }))
})

describe("header safety (property tests)", () => {
  const controls = ["\r", "\n", "\r\n", "\u0000", "\t", "\u007f", "\u0085", "\u2028", "\u2029", "\u001b"]
  const inject = (value: string) =>
    fc.tuple(fc.nat({ max: value.length }), fc.constantFrom(...controls)).map(([at, control]) =>
      value.slice(0, at) + control + value.slice(at)
    )

  const cases: ReadonlyArray<readonly [string, fc.Arbitrary<[Record<string, unknown>, Recipients]>]> = [
    ["from_name", inject("Zulip Account Security").map((value) => [rendered({ from_name: value }), {}])],
    ["reply_to_email", inject("Help <help@zulip.example>").map((value) => [rendered({ reply_to_email: value }), {}])],
    ["to_emails", inject("King Hamlet <hamlet@zulip.example>").map((value) => [rendered({ to_emails: [value] }), {}])],
    ["from_address", inject("security@zulip.example").map((value) => [rendered({ from_address: value }), {}])],
    ["subject", inject("Your weekly digest").map((value) => [rendered({ subject: value }), {}])],
    ["to_user_ids", inject("King Hamlet").map((value) => [toUsers(), { realm, users: [{ ...hamlet, fullName: value }] }])],
    ["to_user_ids", inject("hamlet@zulip.example").map((value) => [toUsers(), { realm, users: [{ ...hamlet, deliveryEmail: value }] }])]
  ]

  for (const [field, arbitrary] of cases) {
    it(`refuses any control character in ${field}, naming the field`, async () => {
      await fc.assert(
        fc.asyncProperty(arbitrary, async ([event, recipients]) => {
          const exit = await Effect.runPromiseExit(build(event, recipients))
          assert.isTrue(Exit.isFailure(exit))
          const error = Exit.isFailure(exit) ? exit.cause.reasons.find((reason) => reason._tag === "Fail") : undefined
          assert.strictEqual(error?._tag === "Fail" ? (error.error as InvalidEvent).field : null, field)
        }),
        { numRuns: 60 }
      )
    })
  }

  it("never lets an injected header reach the composed message", async () => {
    const piece = fc.constantFrom(
      "a", "Z", " ", ",", ";", ":", "<", ">", "@", "\"", "\\", "(", ")", "é", "澳", "=?utf-8?q?x?=",
      "hamlet@zulip.example", "\r", "\n", "\r\n", "\t", "\u0000", "\u2028", "Bcc: evil@evil.example", "\r\nBcc: evil@evil.example"
    )
    const text = fc.array(piece, { maxLength: 8 }).map((pieces) => pieces.join(""))
    const wanted = new Set([
      "content-type", "from", "to", "reply-to", "subject", "message-id", "date", "mime-version", "list-id",
      "x-auto-response-suppress", "list-unsubscribe", "list-unsubscribe-post"
    ])
    await fc.assert(
      fc.asyncProperty(text, text, text, text, text, fc.boolean(), async (fromName, replyTo, to, subject, fullName, users) => {
        const event = rendered({
          from_name: fromName,
          reply_to_email: `${replyTo}help@zulip.example`,
          subject,
          html: "<p>Body</p>",
          realm_id: 2,
          context: { unsubscribe_link: "https://zulip.example.com/u/1" },
          ...(users ? { to_emails: null, to_user_ids: [10] } : { to_emails: [`${to}hamlet@zulip.example`] })
        })
        const exit = await Effect.runPromiseExit(build(event, { realm, users: [{ ...hamlet, fullName }] }))
        const inputs = [fromName, replyTo, subject, users ? fullName : to]
        if (Exit.isFailure(exit)) {
          assert.isTrue(exit.cause.reasons.some((reason) => reason._tag === "Fail" && reason.error._tag === "InvalidEvent"))
          return
        }
        assert.isTrue(inputs.every((input) => controlCharacterIn(input) === null))
        const email = exit.value
        for (const address of email.envelope.to) assert.strictEqual(parseMailbox(address)?.name, "")
        const raw = (await Effect.runPromise(messageBytes(email))).toString("utf8")
        const head = raw.slice(0, raw.indexOf("\r\n\r\n"))
        const names = head.split("\r\n").filter((line) => !/^[ \t]/.test(line)).map((line) => line.slice(0, line.indexOf(":")).toLowerCase())
        // nodemailer leaves out an empty Subject
        const expected = [...wanted].filter((name) => name !== "subject" || email.subject !== "")
        assert.sameMembers(names, expected)
      }),
      { numRuns: 150 }
    )
  })
})

describe("logs", () => {
  it.effect("never carry context values or message bodies", () =>
    Effect.gen(function*() {
      const secret = "s3cr3t-context-value"
      const lines: Array<string> = []
      const everything = Logger.layer([Logger.make((options) => lines.push(JSON.stringify(Logger.formatStructured.log(options))))])
      yield* build({
        template_prefix: "zerver/emails/notify_new_login",
        to_user_ids: [10],
        context: { user_email: secret, device_ip: secret, unsubscribe_link: `https://x.example/${secret}` }
      }, { realm, users: [{ ...hamlet, defaultLanguage: null }] }).pipe(Effect.provide(everything as Layer.Layer<never>))
      yield* Effect.flip(build(rendered({ subject: `${secret}\n`, text: secret }))).pipe(
        Effect.provide(everything as Layer.Layer<never>)
      )
      assert.lengthOf(lines, 1)
      assert.include(lines[0], "Missing language for email template 'zerver/emails/notify_new_login'")
      assert.notInclude(lines.join("\n"), secret)
    }))
})
