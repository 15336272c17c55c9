"""flowtest's words in the reader's language: gettext, with Babel's catalogs.

English is the source language and the default; Simplified Chinese (zh_CN)
is complete. Only human text goes through here: codes, JSON keys, metric
names, JUnit structure and Nagios status words never do (DESIGN.md,
"Languages").

The language is chosen, first match wins, by :func:`activate` (the CLI's
``--lang`` and the config's ``lang`` call it), else by the locale
(``LANGUAGE``, ``LC_ALL``, ``LC_MESSAGES``, ``LANG``, in gettext's order).

Catalogs: ``locale/<lang>/LC_MESSAGES/flowtest.po`` is the source. A wheel
carries the ``.mo`` the build compiled from it (setup.py); a checkout or an
editable install has only the ``.po``, which is compiled in memory with
Babel at first use. That is why Babel is a runtime dependency, not only a
build one: ``make demo`` from a fresh clone must speak Chinese too.

This module imports nothing of flowtest's: it sits at the bottom, beside
``model``, so ``mail`` (the judge's sentences) may use it.
"""

from __future__ import annotations

import contextlib
import gettext as _gettext
import io
import os
import threading
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "LANGUAGES",
    "N_",
    "LazyString",
    "activate",
    "active",
    "gettext",
    "lazy_gettext",
    "ngettext",
    "normalize",
    "resolve",
    "translation",
    "use",
]

DOMAIN = "flowtest"
LOCALE_DIR = Path(__file__).parent / "locale"
# The languages flowtest speaks: the option value, and the catalog that serves it.
LANGUAGES = {"en": None, "zh": "zh_CN"}
ENV_ORDER = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")

_lock = threading.Lock()
_catalogs: dict[str, _gettext.NullTranslations] = {}
_active: str | None = None   # None: not chosen yet, the locale decides at first use


def normalize(value: str) -> str | None:
    """``zh``, ``zh_CN.UTF-8``, ``zh-Hans``, ``en_US`` … -> a key of
    :data:`LANGUAGES`, or None for a language flowtest does not speak."""
    word = value.strip().split(".")[0].split("@")[0].replace("-", "_").lower()
    if word in ("", "c", "posix"):
        return "en"
    base = word.split("_")[0]
    return base if base in LANGUAGES else None


def from_environment(environ: dict[str, str] | None = None) -> str:
    """The language the locale asks for, as gettext reads it: the first of
    LANGUAGE, LC_ALL, LC_MESSAGES, LANG that is set; LANGUAGE may list
    several (``zh_CN:en``), the first one flowtest speaks wins."""
    env = os.environ if environ is None else environ
    for name in ENV_ORDER:
        value = env.get(name, "")
        if not value:
            continue
        for choice in value.split(":"):
            lang = normalize(choice)
            if lang is not None:
                return lang
        return "en"
    return "en"


def resolve(option: str | None = None, config: str | None = None,
            environ: dict[str, str] | None = None) -> str:
    """The language to use: ``--lang``, else the config's ``lang``, else the locale."""
    for chosen in (option, config):
        if chosen:
            lang = normalize(chosen)
            if lang is None:
                raise ValueError(f"unknown language {chosen!r}; known: "
                                 + ", ".join(LANGUAGES))
            return lang
    return from_environment(environ)


def _compile_po(po: Path) -> _gettext.GNUTranslations:
    # Only a checkout or an editable install gets here: a built wheel has the .mo.
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with po.open("rb") as f:
        catalog = read_po(f, domain=DOMAIN)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return _gettext.GNUTranslations(buf)


def translation(lang: str) -> _gettext.NullTranslations:
    """The catalog for ``lang`` (loaded once per process; catalogs do not change)."""
    with _lock:
        found = _catalogs.get(lang)
        if found is not None:
            return found
        locale = LANGUAGES.get(lang)
        catalog: _gettext.NullTranslations
        if locale is None:
            catalog = _gettext.NullTranslations()
        else:
            folder = LOCALE_DIR / locale / "LC_MESSAGES"
            mo, po = folder / f"{DOMAIN}.mo", folder / f"{DOMAIN}.po"
            if mo.exists() and (not po.exists() or mo.stat().st_mtime >= po.stat().st_mtime):
                with mo.open("rb") as f:
                    catalog = _gettext.GNUTranslations(f)
            else:
                catalog = _compile_po(po)
        _catalogs[lang] = catalog
        return catalog


def activate(lang: str | None) -> None:
    """Speak ``lang`` from now on (None: let the locale decide again)."""
    global _active
    if lang is not None and lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}")
    _active = lang


def active() -> str:
    """The language in use now."""
    global _active
    if _active is None:
        _active = from_environment()
    return _active


@contextlib.contextmanager
def use(lang: str | None) -> Iterator[str]:
    """Speak ``lang`` for the length of the ``with``, then what was spoken before
    (the CLI's ``main`` is called many times in one test process)."""
    before = _active
    activate(lang)
    try:
        yield active()
    finally:
        activate(before)


def gettext(message: str) -> str:
    return translation(active()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translation(active()).ngettext(singular, plural, n)


_ = gettext


def N_(message: str) -> str:
    """Mark a module-level constant for extraction; translate it where it is shown."""
    return message


class LazyString:
    """A message translated each time it is turned into text, for module-level
    constants shown later (argparse help built before ``--lang`` is read)."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message

    def __str__(self) -> str:
        return gettext(self.message)

    def __repr__(self) -> str:
        return f"LazyString({self.message!r})"

    def format(self, *args: object, **kwargs: object) -> str:
        return str(self).format(*args, **kwargs)


def lazy_gettext(message: str) -> LazyString:
    return LazyString(message)
