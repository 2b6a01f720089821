#!/usr/bin/env python3
"""Checks that the shipped catalogs translate every message of the shipped email templates.

usage: python3 scripts/check-shipped-translations.py [TEMPLATES_DIR [LOCALE_DIR]]
       (defaults: templates/ and locale/ of this repository)

For every template file under TEMPLATES_DIR it takes the messages (`{% trans %}` blocks and `_("…")` calls)
exactly as Jinja2's i18n extension sees them in the environment that renders the file, configured as Zulip
configures it: `.txt` files (subjects and plain-text bodies) with trim_blocks and lstrip_blocks, which change the
whitespace inside a trans block, and everything else (HTML, the macros, the CSS) without. Then, for each
LOCALE_DIR/<lang>/LC_MESSAGES/django.po, it compiles the catalog with `msgfmt --check` (placeholders of
python-format entries, plural forms, header) and reports every message the catalog does not translate (missing,
empty or fuzzy: the email would show English) and every entry no template uses any more. Exit status 1 when
anything is reported. Run it after editing a shipped template's wording or a catalog.

Needs Python's Jinja2 (Debian: python3-jinja2) and gettext's msgfmt.
"""
import gettext
import os
import subprocess
import sys
import tempfile

import jinja2

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def environment(plaintext):
    options = dict(trim_blocks=True, lstrip_blocks=True) if plaintext else {}
    return jinja2.Environment(autoescape=not plaintext, extensions=["jinja2.ext.i18n"], **options)


def template_messages(templates_dir):
    """{message: [files]}, where a message is a msgid or a (msgid, msgid_plural) pair."""
    html, text = environment(plaintext=False), environment(plaintext=True)
    messages = {}
    for root, _, files in os.walk(templates_dir):
        for name in sorted(files):
            file = os.path.join(root, name)
            with open(file, encoding="utf-8") as source:
                found = (text if name.endswith(".txt") else html).extract_translations(source.read())
            for _, _, message in found:
                if isinstance(message, tuple):
                    forms = tuple(form for form in message if form is not None)
                    message = forms[0] if len(forms) == 1 else forms
                messages.setdefault(message, []).append(os.path.relpath(file, templates_dir))
    return messages


def compiled_catalog(po_file):
    """The catalog's translated entries, or None when msgfmt refuses the file (it prints why)."""
    with tempfile.TemporaryDirectory() as scratch:
        mo_file = os.path.join(scratch, "django.mo")
        if subprocess.run(["msgfmt", "--check", "-o", mo_file, po_file]).returncode != 0:
            return None
        with open(mo_file, "rb") as mo:
            return gettext.GNUTranslations(mo)._catalog


def check(templates_dir, locale_dir):
    messages = template_messages(templates_dir)
    problems = 0
    languages = sorted(
        language for language in os.listdir(locale_dir)
        if os.path.isfile(os.path.join(locale_dir, language, "LC_MESSAGES", "django.po"))
    )
    if not languages:
        print(f"{locale_dir}: no <lang>/LC_MESSAGES/django.po")
        return 1
    for language in languages:
        po_file = os.path.join(locale_dir, language, "LC_MESSAGES", "django.po")
        catalog = compiled_catalog(po_file)
        if catalog is None:
            problems += 1
            continue
        used = set()
        for message, files in messages.items():
            keys = [(message[0], 0), (message[0], 1)] if isinstance(message, tuple) else [message]
            used.update(keys)
            if not all(catalog.get(key) for key in keys):
                problems += 1
                print(f"{po_file}: not translated: {message!r} (used in {', '.join(sorted(set(files)))})")
        for key in catalog:
            if key != "" and key not in used:
                problems += 1
                print(f"{po_file}: no template uses {key[0] if isinstance(key, tuple) else key!r}")
    print(f"{len(messages)} messages in {templates_dir}; {', '.join(languages)} checked: {problems} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    templates = sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPOSITORY, "templates")
    locales = sys.argv[2] if len(sys.argv) > 2 else os.path.join(REPOSITORY, "locale")
    sys.exit(check(templates, locales))
