"""Organizational domain (RFC 7489 §3.2) from the Public Suffix List, offline.

Uses the copy of the PSL that authheaders ships, parsed once. Unlike
authheaders' own helper it applies the PSL's default rule ``*`` properly, so
names under reserved TLDs (``.test``, ``.example``) get an organization of
their own instead of all sharing one.

The file is found without importing authheaders (which imports dkimpy,
pyspf, authres and publicsuffix2: about 75 ms of a one-probe run's CPU), and
its internationalized rules stay in Unicode: names asked about in A-label
form (``xn--``) are decoded instead, since IDNA-encoding the 500 rules at
every start cost another 25 ms (issue 19, cProfile of `flowtest run`).
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path


def _psl_text() -> str:
    spec = importlib.util.find_spec("authheaders")  # finds, does not import
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("authheaders (which ships the Public Suffix List) is not installed")
    folder = Path(next(iter(spec.submodule_search_locations)))
    return (folder / "public_suffix_list.txt").read_text(encoding="utf-8")


@functools.cache
def _rules() -> frozenset[str]:
    """Every rule line as written ("co.uk", "*.kawasaki.jp", "!city.kawasaki.jp"):
    a set built in C, since a line-by-line parse cost 15 ms at every start.
    Comment lines are taken out again, and :func:`public_suffix` never asks
    about a name with "/" or whitespace in it."""
    lines = _psl_text().lower().splitlines()
    rules = set(lines)
    rules.difference_update(line for line in lines if line.startswith("//") or
                            line != line.strip())
    # The PSL reads a rule up to the first whitespace; the shipped copy has none.
    rules.update(line.split()[0] for line in lines
                 if line.strip() and not line.startswith("//") and line != line.strip())
    rules.discard("")
    return frozenset(rules)


def public_suffix(domain: str) -> str:
    """The public suffix of ``domain`` (``co.uk`` for ``a.b.co.uk``)."""
    labels = domain.lower().rstrip(".").split(".")
    if any(("/" in label or not label.isprintable() or " " in label) for label in labels):
        return labels[-1]  # not a host name (hostile input): only the default rule "*"
    keys = [_unicode(label) for label in labels]  # how the PSL writes its rules
    rules = _rules()
    # Longest matching rule wins; the default rule "*" matches the last label.
    best = 1
    for i in range(len(labels)):
        candidate = ".".join(keys[i:])
        size = len(labels) - i
        if "!" + candidate in rules:
            return ".".join(labels[i + 1:])
        if candidate in rules and size > best:
            best = size
        if i + 1 < len(labels) and "*." + ".".join(keys[i + 1:]) in rules and size > best:
            best = size
    return ".".join(labels[-best:])


def _unicode(label: str) -> str:
    if not label.startswith("xn--"):
        return label
    try:
        return label.encode("ascii").decode("idna")
    except (UnicodeError, ValueError):
        return label  # not valid punycode: it matches no rule but the default


def org_domain(domain: str) -> str:
    """Public suffix plus one label; the domain itself if it is a suffix."""
    name = domain.lower().rstrip(".")
    suffix = public_suffix(name)
    labels = name.split(".")
    suffix_len = len(suffix.split("."))
    if len(labels) <= suffix_len:
        return name
    return ".".join(labels[-(suffix_len + 1):])
