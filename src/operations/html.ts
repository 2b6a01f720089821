/** What the endpoint's HTML pages share: escaping, and the headers that keep a page from running anything. */
import { HttpServerResponse } from "effect/http"

/** Text as HTML text or attribute value: nothing in it is taken as markup. */
export const escapeHtml = (text: string): string =>
  text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&#39;")

/**
 * An operator page: no script runs and nothing loads but its own inline styles; forms post only to this endpoint;
 * no other site may frame it; nothing is cached, and no other site is told its address (a referrer).
 */
export const operatorPage = (body: string, status = 200, headers: Readonly<Record<string, string>> = {}) =>
  HttpServerResponse.text(body, {
    status,
    contentType: "text/html; charset=utf-8",
    headers: {
      "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
      "x-frame-options": "DENY",
      "referrer-policy": "same-origin",
      "cache-control": "no-store",
      ...headers
    }
  })
