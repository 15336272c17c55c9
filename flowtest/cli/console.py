"""What the command line prints for people, and the one way it prints it.

Anything that came from the network or a file (an SMTP reply, a header, a DNS
record, an alias in a config) is text, never rich markup: a `[/]` in a bounce
would raise in the middle of a run, `[link=…]` would plant a hidden link, and
`:smile:` would turn into an emoji. So every console here has markup and
emoji off, and styled lines are assembled from pieces with rich's ``Text``:
a plain ``str`` piece is printed as it is (control characters made visible),
a ``(text, style)`` piece is flowtest's own words in a style.

rich is imported when a console is first made: `flowtest --help` does not
need it (docs/performance.md measures the help's start-up time).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from flowtest.i18n import gettext as _
from flowtest.i18n import ngettext
from flowtest.mail.text import inert as inert

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

Piece = str | tuple[str, str]


ERROR, WARN, GOOD, STRONG, QUIET = "bold red", "bold yellow", "bold green", "bold", "dim"
SEVERITY = {"error": ERROR, "warning": WARN, "info": QUIET}


def console(*, stderr: bool = False) -> Console:
    """A console that never reads markup or emoji codes in what it prints, and
    whose progress lines carry the time but not rich's `file.py:line`."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=False, markup=False,
                   emoji=False, log_path=False)


def line(*pieces: Piece) -> Text:
    """One line from pieces: plain strings as text, (text, style) tuples styled."""
    from rich.text import Text

    out = Text()
    for piece in pieces:
        if isinstance(piece, tuple):
            out.append(inert(piece[0]), style=piece[1])
        else:
            out.append(inert(piece))
    return out


def say(out: Console, *pieces: Piece) -> None:
    """Print one line, never cut: the terminal wraps it, a copy stays whole."""
    out.print(line(*pieces), soft_wrap=True)


def progress(err: Console, *pieces: Piece) -> None:
    """A progress line on stderr, stamped with the time."""
    err.log(line(*pieces))


def transport_warnings(config: Any) -> list[str]:
    """The loud words for a run whose transport is not safe, worst first: no
    TLS at all is worse than TLS without verification, and says so."""
    from flowtest.config import plaintext_endpoints  # not at import: `--help` stays fast

    words = []
    plain = plaintext_endpoints(config)
    if plain:
        # The upper-case marks stay English in every language: people and
        # scripts look for them.
        words.append("PLAINTEXT: " + _(
            "no TLS at all to {endpoints}; passwords and probes cross the network readable "
            "by anyone on the path.").format(endpoints=", ".join(plain)))
    if config.tls.insecure:
        words.append("INSECURE: " + _("TLS verification is off for this run."))
    return words


def nagios_prefix(config: Any) -> str:
    """The same warning at the front of a Nagios line (one line, few words)."""
    from flowtest.config import plaintext_endpoints

    marks = (["PLAINTEXT"] if plaintext_endpoints(config) else []) + \
        (["INSECURE TLS"] if config.tls.insecure else [])
    return " ".join(marks) + ": " if marks else ""


def banner(out: Console, config: Any) -> None:
    for words in transport_warnings(config):
        say(out, (words, ERROR))


def findings(out: Console, found: Sequence[Any]) -> None:
    """The doctor's findings: severity, code, message and fix. Messages quote
    DNS records, which anyone who controls the zone can fill with anything."""
    say(out, ("DNS", STRONG), " " + ngettext("({count} finding)", "({count} findings)",
                                            len(found)).format(count=len(found)))
    for f in found:
        say(out, (f"{f.severity.upper():7}", SEVERITY[f.severity]), f" {f.code}: {f.message}")
        if f.fix and f.severity != "info":
            say(out, "        " + _("fix: {fix}").format(fix=f.fix))


def verdict(out: Console, word: str) -> None:
    style = {"pass": GOOD, "warn": WARN}.get(word, ERROR)
    say(out, _("verdict: "), (word.upper(), style))


def lines(out: Console, texts: Iterable[str]) -> None:
    for text in texts:
        say(out, text)
