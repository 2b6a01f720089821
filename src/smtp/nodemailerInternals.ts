/**
 * The members of nodemailer's objects that its public API does not offer, and this worker needs. Nothing else
 * reaches past nodemailer's API: nodemailer is pinned to an exact version (package.json), and
 * test/nodemailerInternals.test.ts holds that version to what is used here, so an upgrade that moves them fails there.
 *
 * - `SMTPConnection` has no NOOP method and no way to see a reply out of turn: its own RSET and QUIT are written
 *   with `_sendCommand` and `_responseActions`, and its parser keeps unread replies in `_responseQueue` and
 *   `_remainder`. Its socket timeout is set once at connect; `_socket` lets a parked connection turn it off.
 * - `MimeNode.stream` reads `_raw`, `_transforms` and `_processFuncs`, which its type declarations leave out.
 */
import type MimeNode from "nodemailer/lib/mime-node"
import type SMTPConnection from "nodemailer/lib/smtp-connection"

interface CommandChannel {
  readonly _sendCommand: (command: string) => void
  readonly _responseActions: Array<(reply: string) => void>
  /** replies received and not yet handed to their command, and the start of one still arriving */
  readonly _responseQueue: ReadonlyArray<string>
  readonly _remainder: string
}

/**
 * Hands the server's next reply to `onReply`: the reply to `command`, sent first, or (without one) to a command
 * already answered out of turn. Failures reach the connection's `error` / `end` listeners, not `onReply`.
 */
export const onNextReply = (client: SMTPConnection, onReply: (reply: string) => void, command?: string): void => {
  const channel = client as unknown as CommandChannel
  channel._responseActions.push(onReply)
  if (command !== undefined) channel._sendCommand(command)
}

/** A reply left over, arriving, or still awaited once an exchange is over: some reply came out of turn. */
export const hasUnmatchedReplies = (client: SMTPConnection): boolean => {
  const channel = client as unknown as CommandChannel
  return channel._responseQueue.length > 0 || channel._remainder !== "" || channel._responseActions.length > 0
}

/** The socket's inactivity timeout (0 turns it off); nothing before the socket exists. */
export const setSocketTimeout = (client: SMTPConnection, millis: number): void => {
  if (client._socket) client._socket.setTimeout(millis)
}

interface StreamedNode {
  readonly _raw: unknown
  readonly _transforms: ReadonlyArray<unknown>
  readonly _processFuncs: ReadonlyArray<unknown>
}

/** The node's own body is given raw or passes through stream transforms or processing functions. */
export const hasStreamSteps = (node: MimeNode): boolean => {
  const streamed = node as unknown as StreamedNode
  return Boolean(streamed._raw) || streamed._transforms.length > 0 || streamed._processFuncs.length > 0
}
