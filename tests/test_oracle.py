"""The sandbox decides DMARC alignment with an implementation of its own
(flowtest/sandbox/alignment.py), so flowtest's reader is tested against an
independent oracle, not against itself. Both are checked here against the
same RFC 7489 vectors; a cross-check then looks for any pair they disagree on.
"""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import pytest

from flowtest.mail.dmarc import aligned
from flowtest.sandbox import checks
from flowtest.sandbox.alignment import identifiers_align, organizational_domain

# (authenticated domain, RFC5322.From domain, mode, aligned?) — RFC 7489 §3.1
# and §3.2, with the Public Suffix List's normal, wildcard and exception rules.
VECTORS = [
    # §3.1.1/3.1.2: relaxed compares organizational domains, strict exact names.
    ("example.com", "example.com", "r", True),
    ("example.com", "example.com", "s", True),
    ("mail.example.com", "example.com", "r", True),
    ("mail.example.com", "example.com", "s", False),
    ("example.com", "news.example.com", "r", True),
    ("example.com", "news.example.com", "s", False),
    ("foo.example.com", "bar.example.com", "r", True),
    ("foo.example.com", "bar.example.com", "s", False),
    ("example.com", "example.net", "r", False),
    ("example.com", "example.org", "s", False),
    # The Gmail send-as case: neither SPF nor DKIM aligns with the alias domain.
    ("gmail.com", "example.me", "r", False),
    ("cloudflare-email.net", "example.me", "r", False),
    ("example.me", "example.me", "r", True),
    # Multi-label public suffixes: co.uk is a suffix, so a.co.uk is an organization.
    ("a.co.uk", "b.co.uk", "r", False),
    ("x.a.co.uk", "a.co.uk", "r", True),
    ("x.a.co.uk", "y.a.co.uk", "r", True),
    ("a.co.uk", "co.uk", "r", False),
    # Wildcard (*.kawasaki.jp) and exception (!city.kawasaki.jp) rules.
    ("x.b.kawasaki.jp", "y.b.kawasaki.jp", "r", False),
    ("x.b.kawasaki.jp", "x.b.kawasaki.jp", "r", True),
    ("a.city.kawasaki.jp", "city.kawasaki.jp", "r", True),
    ("a.city.kawasaki.jp", "b.city.kawasaki.jp", "r", True),
    # Private-section suffixes: each github.io site is its own organization.
    ("a.github.io", "b.github.io", "r", False),
    ("www.a.github.io", "a.github.io", "r", True),
    # Names under TLDs the list does not name: the default rule "*" applies,
    # so .example/.test names are organizations of their own (the bug of
    # authheaders' helper, LIBRARY-NOTES.md, groups them all under the TLD).
    ("a.sender.example", "sender.example", "r", True),
    ("sender.example", "other.example", "r", False),
    ("x.foo.test", "y.foo.test", "r", True),
    ("foo.test", "bar.test", "r", False),
    # Case and a trailing dot never matter (domain names are case-insensitive).
    ("Mail.Example.COM.", "example.com", "r", True),
    ("EXAMPLE.com", "example.com.", "s", True),
    # Nothing authenticated aligns with nothing.
    ("", "example.com", "r", False),
    ("example.com", "", "r", False),
]


@pytest.mark.parametrize("identifier, from_domain, mode, expected", VECTORS)
def test_sandbox_oracle_alignment_vectors(identifier: str, from_domain: str, mode: str,
                                          expected: bool) -> None:
    assert identifiers_align(identifier, from_domain, mode) is expected


@pytest.mark.parametrize("identifier, from_domain, mode, expected", VECTORS)
def test_flowtest_reader_alignment_vectors(identifier: str, from_domain: str, mode: str,
                                           expected: bool) -> None:
    assert aligned(identifier, from_domain, mode) is expected


@pytest.mark.parametrize("domain, org", [
    ("example.me", "example.me"), ("a.b.example.me", "example.me"), ("x.co.uk", "x.co.uk"),
    ("mail.google.com", "google.com"), ("a.city.kawasaki.jp", "city.kawasaki.jp"),
    ("x.b.kawasaki.jp", "x.b.kawasaki.jp"), ("a.sender.example", "sender.example"),
    ("EXAMPLE.ME.", "example.me"), ("com", "com")])
def test_oracle_organizational_domain(domain: str, org: str) -> None:
    assert organizational_domain(domain) == org


def test_oracle_and_reader_agree_on_every_pair() -> None:
    # Not a substitute for the vectors: a search for any pair the two
    # implementations decide differently, which one of them must have wrong.
    names = ["example.me", "mail.example.me", "example.com", "a.co.uk", "b.a.co.uk", "co.uk",
             "x.b.kawasaki.jp", "b.kawasaki.jp", "city.kawasaki.jp", "a.city.kawasaki.jp",
             "sender.example", "a.sender.example", "example", "foo.test", "a.github.io",
             "github.io", "gmail.com", "cloudflare-email.net", "xn--p1ai", "a.xn--p1ai",
             "b.a.xn--p1ai"]
    disagree = [(a, b, m) for a, b in itertools.product(names, repeat=2) for m in "rs"
                if identifiers_align(a, b, m) != aligned(a, b, m)]
    assert disagree == []


def test_the_sandbox_never_decides_with_flowtests_own_code() -> None:
    root = Path(checks.__file__).parent
    imports: list[str] = []
    for path in root.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                imports.append(f"{path.name}: {node.module}")
            elif isinstance(node, ast.Import):
                imports.extend(f"{path.name}: {a.name}" for a in node.names)
    assert not [i for i in imports if i.split(": ")[1].startswith("flowtest.mail")], imports
    # And what the DMARC check uses at run time is the oracle's.
    assert checks.authheaders.dmarc_lookup.get_org_domain is organizational_domain
