#!/usr/bin/env python3
"""Regenerates the Jinja2 ground truth under test/fixtures/jinja/: each case's expected.json.

Every directory test/fixtures/jinja/<case>/ holds one small case:
  templates/     the case's template tree (entry files plus the bases, macros and CSS they use);
  case.json      {"description", "language": null | "de" | ..., "context": {...}, "render": ["main.txt", ...]};
  locale/<locale>/LC_MESSAGES/django.po   (optional) the case's catalog;
  expected.json  written here: {"<render path>": {"output": "..."} | {"error": "<class>", "message": "<str>"}}.

Each path in "render" is rendered with Jinja2 configured as Zulip configures it (zproject/computed_settings.py
TEMPLATES and zproject/jinja2/__init__.py, as mirrored by /work/shared/zulip/reference/render_jinja.py):
  - two environments, both FileSystemLoader([<case>/templates]), undefined=jinja2.Undefined,
    extensions=["jinja2.ext.i18n"], auto_reload=False, gettext installed new-style, the filters slugify,
    pluralize (Django's) and display_list (Zulip's), the global support_email (SUPPORT_EMAIL below) and
    policies["json.dumps_kwargs"] = {};
  - a path ending in .txt (including .subject.txt) uses the plaintext environment (autoescape=False,
    trim_blocks=True, lstrip_blocks=True); a path ending in .html the HTML one (autoescape=True).
The context is case.json's "context" as json.load reads it (so 1 is an int and 1.0 a float). The output is the raw
render: Zulip's subject rule (.strip().replace("\\n", "")) is not applied. An exception is recorded as its class
name and str(); a message that mentions the case's directory has it replaced by "<case>".

Translations behave as Django's django.utils.translation, which Zulip installs: the language is mapped to a locale
as Django's to_locale does (pt-br -> pt_BR, zh-hans -> zh_Hans, de -> de); the catalog is
<case>/locale/<locale>/LC_MESSAGES/django.po, else the one of the language part (de_AT -> de), compiled with
msgfmt (so fuzzy entries are left out, as Django's compilemessages does); without a catalog, or with no language,
messages come back unchanged (ngettext: singular when n == 1). gettext("") returns "", not the catalog header.

Run from anywhere, with a Python that has Jinja2 >= 3.1 (e.g. Debian's python3-jinja2; /usr/bin/python3 if
that is where it is) and msgfmt on PATH (Debian's gettext):
    python3 scripts/jinja-fixtures.py             # every case
    python3 scripts/jinja-fixtures.py CASE ...    # only the named cases
"""
import gettext
import json
import os
import re
import subprocess
import sys
import tempfile
import unicodedata
import warnings

try:
    import jinja2
except ImportError:
    raise SystemExit(f"{sys.executable} has no Jinja2: install Jinja2 >= 3.1 (Debian: python3-jinja2)") from None

FIXTURES_DIR = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "../test/fixtures/jinja"))
SUPPORT_EMAIL = "support@zulip.example.com"


def pluralize(value, arg="s"):
    """django.template.defaultfilters.pluralize"""
    if "," not in arg:
        arg = "," + arg
    bits = arg.split(",")
    if len(bits) > 2:
        return ""
    singular_suffix, plural_suffix = bits[:2]
    try:
        return singular_suffix if float(value) == 1 else plural_suffix
    except ValueError:  # Invalid string that's not a number.
        pass
    except TypeError:  # Value isn't a string or a number; maybe it's a list?
        try:
            return singular_suffix if len(value) == 1 else plural_suffix
        except TypeError:  # len() of unsized object.
            pass
    return ""


def slugify(value):
    """django.utils.text.slugify (allow_unicode=False)"""
    value = unicodedata.normalize("NFKD", str(value)).encode("ascii", "ignore").decode("ascii")
    value = re.sub(r"[^\w\s-]", "", value.lower())
    return re.sub(r"[-\s]+", "-", value).strip("-_")


def and_n_others(values, limit):
    """zerver.lib.templates.and_n_others"""
    return " and {} other{}".format(len(values) - limit, "" if len(values) == limit + 1 else "s")


def display_list(values, display_limit):
    """zerver.lib.templates.display_list"""
    if len(values) == 1:
        display_string = f"{values[0]}"
    elif len(values) <= display_limit:
        display_string = ", ".join(f"{value}" for value in values[:-1])
        display_string += f" and {values[-1]}"
    else:
        display_string = ", ".join(f"{value}" for value in values[:display_limit])
        display_string += and_n_others(values, display_limit)
    return display_string


def to_locale(language):
    """django.utils.translation.to_locale"""
    lang, _, country = language.lower().partition("-")
    if not country:
        return language[:3].lower() + language[3:]
    country, _, tail = country.partition("-")
    country = country.title() if len(country) > 2 else country.upper()
    if tail:
        country += "-" + tail
    return lang + "_" + country


CONTEXT_SEPARATOR = "\x04"


class DjangoTranslations:
    """django.utils.translation's functions over one catalog (a gettext.NullTranslations when there is none)."""

    def __init__(self, catalog):
        self.catalog = catalog

    def gettext(self, message):
        # Django normalises line endings and answers "" for "" instead of the catalog's header.
        eol_message = message.replace("\r\n", "\n").replace("\r", "\n")
        return self.catalog.gettext(eol_message) if eol_message else ""

    def ngettext(self, singular, plural, number):
        return self.catalog.ngettext(singular, plural, number)

    def pgettext(self, context, message):
        result = self.gettext(f"{context}{CONTEXT_SEPARATOR}{message}")
        return message if CONTEXT_SEPARATOR in result else result

    def npgettext(self, context, singular, plural, number):
        msgs_with_ctxt = (f"{context}{CONTEXT_SEPARATOR}{singular}", f"{context}{CONTEXT_SEPARATOR}{plural}", number)
        result = self.ngettext(*msgs_with_ctxt)
        return self.ngettext(singular, plural, number) if CONTEXT_SEPARATOR in result else result


def translations_for(case_dir, language, compiled_dir):
    """The case's catalog for `language` (see the module docstring); identity without one."""
    if not language:
        return DjangoTranslations(gettext.NullTranslations())
    locale = to_locale(language)
    for candidate in (locale, locale.split("_")[0]):
        po = os.path.join(case_dir, "locale", candidate, "LC_MESSAGES", "django.po")
        if os.path.exists(po):
            mo = os.path.join(compiled_dir, candidate, "LC_MESSAGES", "django.mo")
            os.makedirs(os.path.dirname(mo), exist_ok=True)
            subprocess.run(["msgfmt", "-o", mo, po], check=True)
            with open(mo, "rb") as f:
                return DjangoTranslations(gettext.GNUTranslations(f))
    return DjangoTranslations(gettext.NullTranslations())


def zulip_environment(templates_dir, translations, plaintext):
    options = dict(autoescape=False, trim_blocks=True, lstrip_blocks=True) if plaintext else dict(autoescape=True)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([templates_dir]),
        auto_reload=False,
        undefined=jinja2.Undefined,
        extensions=["jinja2.ext.i18n"],
        **options,
    )
    env.globals.update(support_email=SUPPORT_EMAIL)
    env.install_gettext_translations(translations, True)
    env.filters["slugify"] = slugify
    env.filters["pluralize"] = pluralize
    env.filters["display_list"] = display_list
    env.policies["json.dumps_kwargs"] = {}
    return env


def render_case(case_dir):
    with open(os.path.join(case_dir, "case.json"), encoding="utf-8") as f:
        case = json.load(f)
    templates_dir = os.path.join(case_dir, "templates")
    with tempfile.TemporaryDirectory() as compiled_dir:
        translations = translations_for(case_dir, case["language"], compiled_dir)
    environments = {
        ".txt": zulip_environment(templates_dir, translations, plaintext=True),
        ".html": zulip_environment(templates_dir, translations, plaintext=False),
    }
    expected = {}
    for path in case["render"]:
        env = environments.get(os.path.splitext(path)[1])
        if env is None:
            raise SystemExit(f"{case_dir}: {path} ends in neither .txt nor .html")
        try:
            expected[path] = {"output": env.get_template(path).render(case["context"])}
        except Exception as e:
            message = str(e).replace(os.path.realpath(case_dir), "<case>").replace(case_dir, "<case>")
            expected[path] = {"error": type(e).__name__, "message": message}
    with open(os.path.join(case_dir, "expected.json"), "w", encoding="utf-8") as f:
        f.write(json.dumps(expected, indent=2, ensure_ascii=False) + "\n")


def main():
    # Python's gettext accepts a float plural count with a DeprecationWarning (case i18n-plural-count-types).
    warnings.filterwarnings("ignore", "Plural value must be an integer", DeprecationWarning)
    names = sys.argv[1:] or sorted(
        name for name in os.listdir(FIXTURES_DIR) if os.path.isfile(os.path.join(FIXTURES_DIR, name, "case.json"))
    )
    for name in names:
        case_dir = os.path.join(FIXTURES_DIR, name)
        if not os.path.isfile(os.path.join(case_dir, "case.json")):
            raise SystemExit(f"no case named {name!r} (no {case_dir}/case.json)")
        render_case(case_dir)
    print(f"{len(names)} case(s) written under {FIXTURES_DIR}")


if __name__ == "__main__":
    main()
