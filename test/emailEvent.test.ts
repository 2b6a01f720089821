import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { decodeEmailEvent, parseJsonBody, withFailedTries } from "../src/domain/EmailEvent.ts"
import { confirmNewEmail } from "./support/inMemory.ts"

const invalid = (input: unknown) => Effect.flip(decodeEmailEvent(input))

describe("EmailEvent", () => {
  it.effect("decodes Zulip's event and keeps the original JSON untouched", () =>
    Effect.gen(function*() {
      const original = { ...confirmNewEmail, realm_id: 2, failed_tries: 1, date: "Tue, 04 Mar 2025 16:09:25 +0000" }
      const event = yield* decodeEmailEvent(original)
      assert.deepStrictEqual(event.content, { _tag: "Template", templatePrefix: "zerver/emails/confirm_new_email" })
      assert.deepStrictEqual(event.recipients, { _tag: "Emails", emails: ["hamlet@zulip.example"] })
      assert.strictEqual(event.fromName, "Zulip Account Security")
      assert.strictEqual(event.fromAddress, "NO_REPLY")
      assert.strictEqual(event.realmId, 2)
      assert.strictEqual(event.failedTries, 1)
      assert.strictEqual(event.original, original)
      assert.deepStrictEqual(withFailedTries(event, 2), { ...original, failed_tries: 2 })
    }))

  it.effect("accepts EMAIL_ALWAYS_ENQUEUED events with every key, nulls included", () =>
    Effect.gen(function*() {
      const event = yield* decodeEmailEvent({
        template_prefix: "zerver/emails/password_reset",
        to_user_ids: [10],
        to_emails: null,
        from_name: null,
        from_address: null,
        reply_to_email: null,
        language: null,
        date: null,
        context: { reset_url: "https://x" },
        realm_id: null,
        remove_suppressed_destination: false
      })
      assert.deepStrictEqual(event.recipients, { _tag: "UserIds", userIds: [10] })
      assert.strictEqual(event.realmId, null)
      assert.deepStrictEqual(event.context, { reset_url: "https://x" })
    }))

  it.effect("decodes remove_suppressed_destination, unset or null meaning false", () =>
    Effect.gen(function*() {
      const decoded = (value: unknown) =>
        decodeEmailEvent({ ...confirmNewEmail, remove_suppressed_destination: value }).pipe(
          Effect.map((event) => event.removeSuppressedDestination)
        )
      assert.isTrue(yield* decoded(true))
      assert.isFalse(yield* decoded(false))
      assert.isFalse(yield* decoded(null))
      assert.isFalse((yield* decodeEmailEvent(confirmNewEmail)).removeSuppressedDestination)
      const wrongType = yield* invalid({ ...confirmNewEmail, remove_suppressed_destination: "yes" })
      assert.strictEqual(wrongType.field, "remove_suppressed_destination")
      assert.include(wrongType.message, "remove_suppressed_destination: Expected boolean | null")
    }))

  it.effect("converts the legacy singular keys like handle_send_email_format_changes", () =>
    Effect.gen(function*() {
      const fromEmail = yield* decodeEmailEvent({ template_prefix: "a/b", to_email: "x@y.example", to_emails: ["ignored@y.example"] })
      assert.deepStrictEqual(fromEmail.recipients, { _tag: "Emails", emails: ["x@y.example"] })
      const fromUser = yield* decodeEmailEvent({ template_prefix: "a/b", to_user_id: 7 })
      assert.deepStrictEqual(fromUser.recipients, { _tag: "UserIds", userIds: [7] })
      const nullLegacy = yield* decodeEmailEvent({ template_prefix: "a/b", to_email: null, to_user_ids: [3] })
      assert.deepStrictEqual(nullLegacy.recipients, { _tag: "UserIds", userIds: [3] })
      // the original keeps the legacy key, so a requeue sends back exactly what the producer sent
      assert.strictEqual(fromUser.original.to_user_id, 7)
    }))

  it.effect("rejects unknown keys, naming them", () =>
    Effect.gen(function*() {
      const error = yield* invalid({ ...confirmNewEmail, connection: "smtp", bcc: ["x@y"] })
      assert.strictEqual(error._tag, "InvalidEvent")
      assert.strictEqual(error.field, "connection")
      assert.include(error.message, "connection: unknown key")
      assert.include(error.message, "bcc: unknown key")
      // parameters of send_immediate_email that send_email never puts in an event
      const parameters = yield* invalid({ ...confirmNewEmail, dry_run: true, in_reply_to: "<a@b>", references: "<a@b>" })
      for (const key of ["dry_run", "in_reply_to", "references"]) assert.include(parameters.message, `${key}: unknown key`)
    }))

  it.effect("rejects wrong types with the field and the expected type", () =>
    Effect.gen(function*() {
      const error = yield* invalid({ ...confirmNewEmail, from_name: 42 })
      assert.strictEqual(error.field, "from_name")
      assert.include(error.message, "from_name: Expected string | null")
      const ids = yield* invalid({ template_prefix: "a", to_user_ids: [1, "two"] })
      assert.include(ids.message, "to_user_ids[1]: Expected number")
      // the reason is built from the structured issue (path and message), not from Effect's printed error text
      const nested = yield* invalid({ ...confirmNewEmail, to_emails: ["a@example.com", 7], language: 1 })
      assert.strictEqual(nested.field, "to_emails")
      assert.strictEqual(
        nested.message,
        "invalid email event: to_emails[1]: Expected string; language: Expected string | null"
      )
      const tries = yield* invalid({ ...confirmNewEmail, failed_tries: -1 })
      assert.strictEqual(tries.field, "failed_tries")
      const context = yield* invalid({ ...confirmNewEmail, context: [1, 2] })
      assert.strictEqual(context.field, "context")
    }))

  it.effect("requires exactly one of to_emails / to_user_ids, and at least one recipient", () =>
    Effect.gen(function*() {
      const both = yield* invalid({ template_prefix: "a", to_emails: ["x@y"], to_user_ids: [1] })
      assert.include(both.message, "exactly one of to_emails / to_user_ids must be set; both are")
      const neither = yield* invalid({ template_prefix: "a" })
      assert.include(neither.message, "exactly one of to_emails / to_user_ids must be set; neither is")
      const empty = yield* invalid({ template_prefix: "a", to_emails: [] })
      assert.include(empty.message, "to_emails: must list at least one recipient")
    }))

  it.effect("takes pre-rendered content instead of a template, but not both", () =>
    Effect.gen(function*() {
      const rendered = yield* decodeEmailEvent({ subject: "Hi", html: "<p>Hi</p>", to_emails: ["x@y.example"] })
      assert.deepStrictEqual(rendered.content, { _tag: "Rendered", subject: "Hi", text: null, html: "<p>Hi</p>" })
      const both = yield* invalid({ template_prefix: "a", subject: "Hi", text: "t", to_emails: ["x@y"] })
      assert.strictEqual(both.field, "template_prefix")
      const noSubject = yield* invalid({ text: "t", to_emails: ["x@y"] })
      assert.include(noSubject.message, "subject: is required for a pre-rendered email")
      const noBody = yield* invalid({ subject: "s", to_emails: ["x@y"] })
      assert.include(noBody.message, "needs text and/or html")
      const nothing = yield* invalid({ to_emails: ["x@y"] })
      assert.include(nothing.message, "template_prefix: is required")
    }))

  it.effect("refuses a body that is not a JSON object", () =>
    Effect.gen(function*() {
      const notJson = yield* Effect.flip(parseJsonBody("{not json"))
      assert.include(notJson.message, "body is not JSON")
      for (const value of [null, 3, "text", [confirmNewEmail]]) {
        const error = yield* invalid(value)
        assert.include(error.message, "expected a JSON object")
      }
    }))
})
