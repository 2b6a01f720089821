/**
 * The HTML of the `/failures` pages. Everything taken from the errors file (tags, templates, messages, events) is
 * escaped; context values and bodies are shown only when asked for. No script: every action is a form.
 */
import { type CountsPeriod, type FailureListing, NO_TAG, NOT_AN_EVENT, type RecordedFailure } from "../records/failureListing.ts"
import type { ReplayedEvent, ReplayFilters, ReplaySummary } from "../records/replayFailures.ts"
import { escapeHtml } from "./html.ts"
import type { Operator } from "./operatorAccess.ts"

const twoDigits = (n: number) => String(n).padStart(2, "0")

/** Local time as `2025-03-04 16:09:25` (the errors file's times are local). */
export const formatTime = (time: Date): string =>
  `${time.getFullYear()}-${twoDigits(time.getMonth() + 1)}-${twoDigits(time.getDate())} ` +
  `${twoDigits(time.getHours())}:${twoDigits(time.getMinutes())}:${twoDigits(time.getSeconds())}`

/** As a `datetime-local` input writes it: `2025-03-04T16:09`. */
const inputTime = (time: Date | undefined): string =>
  time === undefined ? "" : formatTime(time).slice(0, 16).replace(" ", "T")

const style = `
body { font-family: sans-serif; margin: 1.5em; max-width: 80em; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
td.n { text-align: right; }
.bar { display: inline-block; height: 0.8em; background: #c55; }
.replayed { color: #070; font-weight: bold; }
.masked { color: #888; }
.notice { background: #ffd; padding: 0.5em; }
.problem { color: #a00; }
form.inline { display: inline; }
dl { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; }
dt { font-weight: bold; }
dd { margin: 0; white-space: pre-wrap; }
pre { white-space: pre-wrap; background: #f6f6f6; padding: 0.6em; }
`

const csrfField = (operator: Operator): string =>
  operator._tag === "Session" ? `<input type="hidden" name="csrf" value="${escapeHtml(operator.csrfToken)}">` : ""

const layout = (title: string, body: string, operator: Operator | null): string => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escapeHtml(title)}</title>
<style>${style}</style>
</head>
<body>
${operator?._tag === "Session" ? `<form class="inline" method="post" action="/failures/logout">${csrfField(operator)}<button>Log out</button></form>` : ""}
<h1>${escapeHtml(title)}</h1>
${body}
</body>
</html>
`

export const loginPage = (problem: string | null): string =>
  layout("Failed emails: log in", `
${problem === null ? "" : `<p class="problem">${escapeHtml(problem)}</p>`}
<form method="post" action="/failures/login">
<label>Operations token (OPERATIONS_TOKEN) <input type="password" name="token" autocomplete="current-password" required autofocus></label>
<button>Log in</button>
</form>`, null)

export const problemPage = (title: string, problem: string, operator: Operator | null): string =>
  layout(title, `<p class="problem">${escapeHtml(problem)}</p><p><a href="/failures">Back to the failures</a></p>`, operator)

const filterQuery = (filters: ReplayFilters): string => {
  const params = new URLSearchParams()
  if (filters.tag !== undefined) params.set("tag", filters.tag)
  if (filters.template !== undefined) params.set("template", filters.template)
  if (filters.since !== undefined) params.set("since", inputTime(filters.since))
  if (filters.until !== undefined) params.set("until", inputTime(filters.until))
  return params.toString()
}

const filterFields = (filters: ReplayFilters): string =>
  [["tag", filters.tag], ["template", filters.template], ["since", inputTime(filters.since)], ["until", inputTime(filters.until)]]
    .filter(([, value]) => value !== undefined && value !== "")
    .map(([name, value]) => `<input type="hidden" name="${name}" value="${escapeHtml(value!)}">`)
    .join("")

const choice = (name: string, label: string, values: ReadonlyArray<string>, selected: string | undefined): string =>
  `<label>${label} <select name="${name}"><option value="">(any)</option>${
    values.map((value) => `<option${value === selected ? " selected" : ""}>${escapeHtml(value)}</option>`).join("")
  }</select></label>`

const filterForm = (listing: FailureListing, filters: ReplayFilters): string => `
<form method="get" action="/failures">
${choice("tag", "Tag", listing.tags, filters.tag)}
${choice("template", "Template", listing.templates, filters.template)}
<label>Since <input type="datetime-local" name="since" value="${inputTime(filters.since)}"></label>
<label>Until <input type="datetime-local" name="until" value="${inputTime(filters.until)}"></label>
<button>Filter</button> <a href="/failures">Clear</a>
</form>`

/** The columns of a counts table: the most frequent names, the rest together as "other". */
const COLUMNS = 8

const countsTable = (
  caption: string,
  counts: ReadonlyArray<CountsPeriod>,
  of: (period: CountsPeriod) => ReadonlyMap<string, number>,
  period: "hour" | "day"
): string => {
  const totals = new Map<string, number>()
  for (const entry of counts) for (const [name, count] of of(entry)) totals.set(name, (totals.get(name) ?? 0) + count)
  const names = [...totals].sort(([, a], [, b]) => b - a).map(([name]) => name)
  const shown = names.slice(0, COLUMNS)
  const other = names.length > COLUMNS
  const most = Math.max(1, ...counts.map((entry) => entry.total))
  const rows = counts.map((entry) => {
    const cells = shown.map((name) => `<td class="n">${of(entry).get(name) ?? ""}</td>`)
    const rest = [...of(entry)].filter(([name]) => !shown.includes(name)).reduce((sum, [, count]) => sum + count, 0)
    const label = period === "hour" ? formatTime(entry.start).slice(0, 13) + ":00" : formatTime(entry.start).slice(0, 10)
    return `<tr><td>${label}</td><td class="n">${entry.total}</td><td><span class="bar" style="width: ${
      Math.ceil((entry.total / most) * 200)
    }px"></span></td>${cells.join("")}${other ? `<td class="n">${rest || ""}</td>` : ""}</tr>`
  })
  return `<table><caption>${escapeHtml(caption)}</caption>
<thead><tr><th>${period === "hour" ? "Hour" : "Day"}</th><th>Total</th><th></th>${
    shown.map((name) => `<th>${escapeHtml(name)}</th>`).join("")
  }${other ? "<th>other</th>" : ""}</tr></thead>
<tbody>${rows.join("\n")}</tbody></table>`
}

const replayedBadge = (failure: RecordedFailure): string =>
  failure.replayedAt === null ? "" : `<span class="replayed" title="replayed ${escapeHtml(failure.replayedAt)}">replayed ${escapeHtml(failure.replayedAt)}</span>`

const replayOneForm = (failure: RecordedFailure, operator: Operator): string =>
  failure.replayedAt !== null || failure.cut || failure.template === NOT_AN_EVENT
    ? ""
    : `<form class="inline" method="post" action="/failures/replay">${csrfField(operator)}<input type="hidden" name="key" value="${
      escapeHtml(failure.key)
    }"><button>Replay</button></form>`

const failureRow = (failure: RecordedFailure, operator: Operator): string => `<tr>
<td>${failure.time === null ? "?" : formatTime(failure.time)}</td>
<td>${escapeHtml(failure.tag ?? "")}</td>
<td>${escapeHtml(failure.template)}</td>
<td class="n">${failure.reason?.smtpCode ?? ""}</td>
<td>${escapeHtml(failure.reason?.message ?? "")}</td>
<td><a href="/failures/event?key=${encodeURIComponent(failure.key)}">line ${failure.lineNumber}</a></td>
<td>${replayedBadge(failure)}${replayOneForm(failure, operator)}</td>
</tr>`

export const listPage = (
  file: string,
  listing: FailureListing,
  filters: ReplayFilters,
  operator: Operator,
  notice: string | null
): string =>
  layout("Failed emails", `
<p>From ${escapeHtml(file)}: ${listing.matching} failure(s) match, ${listing.replayed} of them replayed${
    listing.unreadableLines > 0 ? `; ${listing.unreadableLines} line(s) are not errors records` : ""
  }.</p>
${notice === null ? "" : `<p class="notice">${escapeHtml(notice)}</p>`}
${filterForm(listing, filters)}
<h2>Over time</h2>
${listing.counts.length === 0 ? "<p>None with a readable time.</p>" : countsTable("By reason tag", listing.counts, (entry) => entry.byTag, listing.period) +
    countsTable("By template", listing.counts, (entry) => entry.byTemplate, listing.period)}
<h2>Failures</h2>
${listing.matching === listing.replayed ? "" : `<form method="post" action="/failures/replay">${csrfField(operator)}${filterFields(filters)}<input type="hidden" name="all" value="1">
<button>Replay all ${listing.matching - listing.replayed} matching failure(s) not replayed yet</button>
</form>`}
<p>${listing.failures.length < listing.matching ? `The newest ${listing.failures.length} are listed.` : "Newest first."}</p>
<table>
<thead><tr><th>Failed</th><th>Tag</th><th>Template</th><th>SMTP</th><th>Reason</th><th>Record</th><th>Replay</th></tr></thead>
<tbody>
${listing.failures.map((failure) => failureRow(failure, operator)).join("\n")}
</tbody></table>`, operator)

const MASK = "••••••"

const describeValue = (value: unknown): string => typeof value === "string" ? value : JSON.stringify(value) ?? String(value)

/** The header-like fields of an event, as its email would carry them. */
const headerFields = (event: Record<string, unknown>): ReadonlyArray<readonly [string, string]> => {
  const fields: Array<readonly [string, string]> = []
  const add = (label: string, value: unknown) => {
    if (value !== undefined && value !== null) fields.push([label, describeValue(value)])
  }
  add("Template", event.template_prefix)
  const from = [event.from_name, event.from_address].filter((part) => typeof part === "string").join(" ")
  if (from !== "") fields.push(["From", from])
  add("To", Array.isArray(event.to_emails) ? event.to_emails.map(describeValue).join(", ") : event.to_emails)
  add("To user ids", Array.isArray(event.to_user_ids) ? event.to_user_ids.map(describeValue).join(", ") : event.to_user_ids)
  add("Reply-To", event.reply_to)
  add("Message-ID", event.message_id)
  add("Date", event.date)
  add("Language", event.language)
  add("Realm", event.realm_id)
  add("failed_tries", event.failed_tries)
  return fields
}

/** What the event's values are when they are personal: its context, and a pre-rendered email's subject and bodies. */
const privateFields = (event: Record<string, unknown>): ReadonlyArray<readonly [string, unknown]> => [
  ...(typeof event.context === "object" && event.context !== null && !Array.isArray(event.context)
    ? Object.entries(event.context).map(([key, value]) => [`context.${key}`, value] as const)
    : event.context === undefined ? [] : [["context", event.context] as const]),
  ...(["subject", "text", "html"] as const).filter((key) => event[key] !== undefined).map((key) => [key, event[key]] as const)
]

const definitions = (fields: ReadonlyArray<readonly [string, string]>): string =>
  `<dl>${fields.map(([name, value]) => `<dt>${escapeHtml(name)}</dt><dd>${escapeHtml(value)}</dd>`).join("")}</dl>`

export const detailPage = (failure: RecordedFailure, reveal: boolean, operator: Operator): string => {
  const event = failure.event
  const isObject = typeof event === "object" && event !== null && !Array.isArray(event)
  const hidden = isObject ? privateFields(event as Record<string, unknown>) : []
  const revealLink = `/failures/event?key=${encodeURIComponent(failure.key)}${reveal ? "" : "&reveal=1"}`
  return layout("Failed email", `
<p><a href="/failures">All failures</a></p>
<h2>Reason</h2>
${definitions([
    ["Tag", failure.tag ?? NO_TAG],
    ["Message", failure.reason?.message ?? ""],
    ["Attempts", failure.reason?.attempts === null || failure.reason === null ? "" : String(failure.reason.attempts)],
    ["SMTP code", failure.reason?.smtpCode === null || failure.reason === null ? "none" : String(failure.reason.smtpCode)],
    ["Failed", failure.time === null ? "unknown" : formatTime(failure.time)],
    ["Record", `line ${failure.lineNumber}${failure.cut ? " (cut at MAX_EVENT_BYTES: cannot be replayed)" : ""}`],
    ["Replayed", failure.replayedAt ?? "no"]
  ])}
${failure.replayedAt === null ? "" : `<p>${replayedBadge(failure)}</p>`}
<p>${replayOneForm(failure, operator)}</p>
<h2>Headers</h2>
${isObject ? definitions(headerFields(event as Record<string, unknown>)) : `<p>Not an event: ${typeof event === "string" ? `a raw text body of ${event.length} characters` : escapeHtml(typeof event)}.</p>`}
<h2>Context and content</h2>
${hidden.length === 0 && isObject ? "<p>(none)</p>" : ""}
<dl>${hidden.map(([name, value]) =>
    `<dt>${escapeHtml(name)}</dt><dd>${reveal ? escapeHtml(describeValue(value)) : `<span class="masked">${MASK}</span>`}</dd>`
  ).join("")}${!isObject && typeof event === "string" ? `<dt>body</dt><dd>${reveal ? escapeHtml(event) : `<span class="masked">${MASK}</span>`}</dd>` : ""}</dl>
<p><a href="${escapeHtml(revealLink)}">${reveal ? "Mask the values" : "Show the values"}</a></p>`, operator)
}

export const replayPage = (
  summary: ReplaySummary,
  replayed: ReadonlyArray<ReplayedEvent>,
  queueName: string,
  filters: ReplayFilters,
  operator: Operator
): string =>
  layout("Replayed", `
<p>Published ${summary.replayed} event(s) to ${escapeHtml(queueName)}, each confirmed by the broker and marked as replayed
(already replayed before: ${summary.alreadyReplayed}; invalid, skipped: ${summary.invalid}).</p>
<table>
<thead><tr><th>Record</th><th>Template</th></tr></thead>
<tbody>${replayed.map((event) =>
    `<tr><td><a href="/failures/event?key=${encodeURIComponent(event.key)}">line ${event.lineNumber}</a></td><td>${escapeHtml(event.template)}</td></tr>`
  ).join("\n")}</tbody></table>
${replayed.length < summary.replayed ? `<p>The first ${replayed.length} are listed.</p>` : ""}
<p><a href="/failures${filters.keys === undefined && filterQuery(filters) !== "" ? `?${escapeHtml(filterQuery(filters))}` : ""}">Back to the failures</a></p>`, operator)
