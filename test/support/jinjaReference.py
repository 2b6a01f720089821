#!/usr/bin/env python3
"""Batch renderer for the differential tests: Jinja2 configured as Zulip configures it, by the reference in
../shared/zulip/reference/render_jinja.py (its environments, filters and catalogs), rendering many cases at once.

usage: jinjaReference.py RENDER_JINJA_PY TEMPLATES_DIR LOCALE_DIR < cases.json > results.json
cases: [{"template": "zerver/emails/x.html", "language": "de" | null, "context": {...}}, ...]
results: [{"output": "..."} | {"error": "ExceptionClass", "message": "..."}, ...] in the same order.
Needs Jinja2 (Debian's python3-jinja2) and msgfmt (Debian's gettext).
"""
import importlib.util
import json
import sys

spec = importlib.util.spec_from_file_location("render_jinja", sys.argv[1])
reference = importlib.util.module_from_spec(spec)
spec.loader.exec_module(reference)
templates_dir, locale_dir = sys.argv[2], sys.argv[3]
support = "support@zulip.example.com"
environments = {}


def environment(language, html):
    key = (language, html)
    if key not in environments:
        translations = reference.translations_for(language, locale_dir)
        environments[key] = reference.zulip_environment(templates_dir, support, plaintext=not html, translations=translations)
    return environments[key]


results = []
for case in json.load(sys.stdin):
    env = environment(case["language"], case["template"].endswith(".html"))
    try:
        results.append({"output": env.get_template(case["template"]).render(case["context"])})
    except Exception as error:  # noqa: BLE001 - every failure is a result to compare
        results.append({"error": type(error).__name__, "message": str(error)})
json.dump(results, sys.stdout)
