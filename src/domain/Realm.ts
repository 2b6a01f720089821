/** The parts of Zulip's `zerver_realm` and `zerver_userprofile` rows that building an email needs. */

export interface Realm {
  readonly id: number
  /** the subdomain; empty for the root realm */
  readonly stringId: string
  readonly name: string
  readonly deactivated: boolean
}

export interface User {
  readonly id: number
  readonly realmId: number
  readonly fullName: string
  readonly deliveryEmail: string
  readonly defaultLanguage: string | null
  readonly isActive: boolean
}
