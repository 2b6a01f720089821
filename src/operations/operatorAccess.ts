/**
 * Who may use the operator pages (`/failures`): whoever presents `OPERATIONS_TOKEN`, either as
 * `Authorization: Bearer <token>` (scripts, curl) or once in the login form, which opens a session held in an
 * HttpOnly, SameSite=Strict cookie (browsers). A session is a random id known only to this process (a restart logs
 * everyone out), never the token itself, and expires after `SESSION_HOURS`.
 *
 * A POST made with a session cookie must also come from the page itself: it carries the session's CSRF token (a
 * hidden field of every form), and when the browser says where it comes from (`Sec-Fetch-Site`, `Origin`), that is
 * this very origin. A POST with a bearer token needs neither: no browser attaches that header across sites.
 */
import { Clock, Effect, Option, Redacted } from "effect"
import { HttpServerRequest } from "effect/http"
import { createHash, randomBytes, timingSafeEqual } from "node:crypto"

export const SESSION_COOKIE = "email_senders_operator"
const SESSION_HOURS = 12
const SESSION_MILLIS = SESSION_HOURS * 3600 * 1000

/** How a request was let in: a bearer token, or a session (whose CSRF token its forms carry). */
export type Operator =
  | { readonly _tag: "Bearer" }
  | { readonly _tag: "Session"; readonly csrfToken: string }

interface Session {
  readonly csrfToken: string
  readonly expiresAt: number
}

const digest = (text: string): Buffer => createHash("sha256").update(text).digest()

/** Equal, in a time that does not depend on where they differ (both are hashed to the same length first). */
export const sameSecret = (given: string, expected: string): boolean => timingSafeEqual(digest(given), digest(expected))

const randomToken = (): string => randomBytes(32).toString("base64url")

/** The value of `Authorization: Bearer <token>`, if that is how the request authenticates. */
const bearerToken = (authorization: string | undefined): string | undefined => {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? "")
  return match?.[1]
}

/**
 * Whether a state-changing request comes from this origin, as far as the browser says: `Sec-Fetch-Site` (sent by
 * every current browser) must be `same-origin`, and `Origin`, when sent, must be this scheme, host and port.
 */
export const fromOwnOrigin = (request: HttpServerRequest.HttpServerRequest): boolean => {
  const site = request.headers["sec-fetch-site"]
  if (site !== undefined && site !== "same-origin") return false
  const origin = request.headers["origin"]
  if (origin === undefined) return true
  const host = request.headers["host"]
  return host !== undefined && (origin === `http://${host}` || origin === `https://${host}`)
}

export const makeOperatorAccess = (token: Redacted.Redacted<string>) => {
  const sessions = new Map<string, Session>()

  /** The operator making the request, if the request presents the token or a live session. */
  const operatorOf = (request: HttpServerRequest.HttpServerRequest): Effect.Effect<Option.Option<Operator>> =>
    Effect.map(Clock.currentTimeMillis, (now) => {
      const bearer = bearerToken(request.headers["authorization"])
      if (bearer !== undefined) {
        return sameSecret(bearer, Redacted.value(token)) ? Option.some<Operator>({ _tag: "Bearer" }) : Option.none()
      }
      const id = request.cookies[SESSION_COOKIE]
      const session = id === undefined ? undefined : sessions.get(id)
      if (id === undefined || session === undefined) return Option.none()
      if (session.expiresAt <= now) {
        sessions.delete(id)
        return Option.none()
      }
      return Option.some<Operator>({ _tag: "Session", csrfToken: session.csrfToken })
    })

  /** A new session for a correct token (its cookie value), else none. */
  const logIn = (given: string): Effect.Effect<Option.Option<string>> =>
    Effect.map(Clock.currentTimeMillis, (now) => {
      if (!sameSecret(given, Redacted.value(token))) return Option.none()
      for (const [id, session] of sessions) if (session.expiresAt <= now) sessions.delete(id)
      const id = randomToken()
      sessions.set(id, { csrfToken: randomToken(), expiresAt: now + SESSION_MILLIS })
      return Option.some(id)
    })

  const logOut = (request: HttpServerRequest.HttpServerRequest): Effect.Effect<void> =>
    Effect.sync(() => {
      const id = request.cookies[SESSION_COOKIE]
      if (id !== undefined) sessions.delete(id)
    })

  /**
   * Whether a POST by `operator` with these form fields may change anything: a bearer token may; a session only
   * from its own pages (`csrf` field, and the browser's origin headers).
   */
  const mayPost = (operator: Operator, request: HttpServerRequest.HttpServerRequest, csrfField: string | undefined): boolean =>
    operator._tag === "Bearer" ||
    (fromOwnOrigin(request) && csrfField !== undefined && sameSecret(csrfField, operator.csrfToken))

  return { operatorOf, logIn, logOut, mayPost }
}

export type OperatorAccess = ReturnType<typeof makeOperatorAccess>

/** The cookie's attributes: sent only to the operator pages, never to a script, never from another site. */
export const sessionCookieOptions = {
  path: "/failures",
  httpOnly: true,
  sameSite: "strict",
  maxAge: `${SESSION_HOURS} hours`
} as const
