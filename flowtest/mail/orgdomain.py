"""Organizational domain (RFC 7489 §3.2) from the Public Suffix List, offline.

Uses the copy of the PSL that authheaders ships, parsed once. Unlike
authheaders' own helper it applies the PSL's default rule ``*`` properly, so
names under reserved TLDs (``.test``, ``.example``) get an organization of
their own instead of all sharing one.
"""

from __future__ import annotations

import functools
import importlib.resources


@functools.cache
def _rules() -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    text = (importlib.resources.files("authheaders") / "public_suffix_list.txt").read_text(
        encoding="utf-8")
    normal: set[str] = set()
    wildcard: set[str] = set()
    exception: set[str] = set()
    for line in text.splitlines():
        rule = line.strip().split(" ", 1)[0].lower()
        if not rule or rule.startswith("//"):
            continue
        rule = rule.encode("idna").decode("ascii") if not rule.isascii() else rule
        if rule.startswith("!"):
            exception.add(rule[1:])
        elif rule.startswith("*."):
            wildcard.add(rule[2:])
        else:
            normal.add(rule)
    return frozenset(normal), frozenset(wildcard), frozenset(exception)


def public_suffix(domain: str) -> str:
    """The public suffix of ``domain`` (``co.uk`` for ``a.b.co.uk``)."""
    labels = domain.lower().rstrip(".").split(".")
    normal, wildcard, exception = _rules()
    # Longest matching rule wins; the default rule "*" matches the last label.
    best = 1
    for i in range(len(labels)):
        candidate = ".".join(labels[i:])
        size = len(labels) - i
        if candidate in exception:
            return ".".join(labels[i + 1:])
        if candidate in normal and size > best:
            best = size
        parent = ".".join(labels[i + 1:])
        if parent in wildcard and size > best:
            best = size
    return ".".join(labels[-best:])


def org_domain(domain: str) -> str:
    """Public suffix plus one label; the domain itself if it is a suffix."""
    name = domain.lower().rstrip(".")
    suffix = public_suffix(name)
    labels = name.split(".")
    suffix_len = len(suffix.split("."))
    if len(labels) <= suffix_len:
        return name
    return ".".join(labels[-(suffix_len + 1):])
