"""IMAP replies as aioimaplib hands them over, read into plain values.

Pure functions, no I/O: LIST (RFC 3501 7.2.2, SPECIAL-USE attributes of RFC
6154), SEARCH, FETCH and the EXAMINE reply's UIDNEXT. Replies come from the
network and are never trusted; what cannot be read is a :class:`ValueError`
for the caller to report, not a guess.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

_LIST_RE = re.compile(rb'^\((?P<attrs>[^)]*)\)\s+(?:"(?P<delim>[^"]*)"|NIL)\s+(?P<name>.+)$')
_UID_RE = re.compile(rb"UID (\d+)")
_FLAGS_RE = re.compile(rb"FLAGS \(([^)]*)\)")
_UIDNEXT_RE = re.compile(rb"UIDNEXT (\d+)")
# Servers without SPECIAL-USE: the usual names of the spam folder.
_JUNK_NAMES = ("spam", "junk", "junk e-mail", "bulk mail")


@dataclass(frozen=True)
class Folders:
    """Folders found by SPECIAL-USE attribute, never by name (FACTS.md)."""

    inbox: str = "INBOX"
    junk: str | None = None
    trash: str | None = None
    sent: str | None = None
    all: list[str] = field(default_factory=list)

    def role(self, name: str) -> str:
        if name == self.inbox:
            return "inbox"
        if name == self.junk:
            return "spam"
        return "other"


def parse_list(lines: Iterable[bytes | bytearray]) -> Folders:
    found: dict[str, str] = {}
    names: list[str] = []
    for line in lines:
        m = _LIST_RE.match(bytes(line).strip())
        if not m:
            continue
        raw_name = m.group("name").strip()
        name = raw_name[1:-1].decode() if raw_name.startswith(b'"') else raw_name.decode()
        attrs = {a.lower() for a in m.group("attrs").decode().split()}
        if "\\noselect" in attrs:
            continue
        names.append(name)
        for attr in ("\\junk", "\\trash", "\\sent"):
            if attr in attrs and attr not in found:
                found[attr] = name
    if "\\junk" not in found:
        for name in names:
            if name.rsplit("/", 1)[-1].lower() in _JUNK_NAMES:
                found["\\junk"] = name
                break
    return Folders(junk=found.get("\\junk"), trash=found.get("\\trash"),
                   sent=found.get("\\sent"), all=names)


def search_uids(lines: list[bytes | bytearray]) -> list[int]:
    """The UIDs of a SEARCH reply (its lines, the tagged completion last)."""
    uids: list[int] = []
    for line in lines[:-1]:
        words = bytes(line).split()
        # aioimaplib strips the "SEARCH" keyword of the untagged reply; accept both.
        if words and words[0].upper() == b"SEARCH":
            words = words[1:]
        if words and all(w.isdigit() for w in words):
            uids.extend(int(w) for w in words)
    return uids


def fetch_items(lines: list[bytes | bytearray], *, section: bytes | None = None
                ) -> list[tuple[int, bytes, frozenset[str]]]:
    """(uid, literal, flags) from a FETCH reply: aioimaplib gives each literal
    as a bytearray between the line that opens it and the line that closes it.

    With ``section`` (e.g. ``b"BODY["``), only items that carry it: a server may
    add unsolicited FETCH responses (RFC 3501 7.4.2), e.g. pymap's ``FETCH
    (FLAGS () UID n)`` for a message stored while the command ran, which are
    not results of the command."""
    out: list[tuple[int, bytes, frozenset[str]]] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if isinstance(line, bytes) and b"FETCH" in line and (section is None
                                                            or section in line):
            m = _UID_RE.search(line)
            literal = b""
            meta = line
            if i + 1 < len(lines) and isinstance(lines[i + 1], bytearray):
                literal = bytes(lines[i + 1])
                if i + 2 < len(lines) and isinstance(lines[i + 2], bytes):
                    meta += lines[i + 2]
                i += 1
            fm = _FLAGS_RE.search(meta)
            flags = frozenset(fm.group(1).decode().split()) if fm else frozenset()
            if m:
                out.append((int(m.group(1)), literal, flags))
        i += 1
    return out


def uidnext(lines: Iterable[bytes | bytearray]) -> int:
    """UIDNEXT of a SELECT or EXAMINE reply, or 0 if the server did not say."""
    for line in lines:
        m = _UIDNEXT_RE.search(bytes(line))
        if m:
            return int(m.group(1))
    return 0


def quote(name: str) -> str:
    """A mailbox name as an IMAP quoted string."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
