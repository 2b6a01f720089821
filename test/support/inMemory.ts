/** The whole pipeline on in-memory layers, as an embedding app's tests would compose it. */
import { Layer } from "effect"
import type { Realm, User } from "../../src/domain/Realm.ts"
import * as InMemoryEmailBuilder from "../../src/email/InMemoryEmailBuilder.ts"
import { InMemoryFailures } from "../../src/records/InMemoryFailureStore.ts"
import { InMemoryQueue } from "../../src/queue/InMemoryQueue.ts"
import { InMemoryRealms } from "../../src/realms/InMemoryRealmRepository.ts"
import { InMemorySmtp } from "../../src/smtp/InMemorySmtp.ts"
import { InMemoryStats } from "../../src/records/InMemoryStatsWriter.ts"
import { InMemorySuppressionList } from "../../src/smtp/InMemorySuppressionList.ts"

export const realm: Realm = { id: 2, stringId: "zulip", name: "Zulip Dev", deactivated: false }
export const hamlet: User = {
  id: 10,
  realmId: 2,
  fullName: "King Hamlet",
  deliveryEmail: "hamlet@zulip.example",
  defaultLanguage: "en",
  isActive: true
}
export const othello: User = { ...hamlet, id: 11, fullName: "Othello", deliveryEmail: "othello@zulip.example" }

export const templates = {
  "zerver/emails/confirm_new_email": { subject: "Confirm your new email", text: "Click the link" },
  "zerver/emails/password_reset": { subject: "Reset your password", text: "Reset it", html: "<p>Reset it</p>" }
}

export const inMemoryLayer = Layer.mergeAll(
  InMemorySmtp.layer,
  InMemorySuppressionList.layer,
  InMemoryQueue.layer,
  InMemoryFailures.layer,
  InMemoryStats.layer,
  InMemoryRealms.layer({ realms: [realm], users: [hamlet, othello] }),
  InMemoryEmailBuilder.layer(templates)
)

/** Zulip's own test event (§6.1 of the Zulip reference). */
export const confirmNewEmail = {
  template_prefix: "zerver/emails/confirm_new_email",
  to_emails: ["hamlet@zulip.example"],
  from_name: "Zulip Account Security",
  from_address: "NO_REPLY",
  context: {}
}
