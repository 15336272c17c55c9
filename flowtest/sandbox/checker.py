"""The receivers' checks (sandbox/checks.py) in a process of their own.

The world's servers share one interpreter: in a 200-message burst, checking
(dkimpy, pyspf, authheaders, all pure Python) holds it for about a quarter
of every message's CPU while IMAP looks and SMTP work wait. A worker process
runs the same checks with the same libraries on the other core, asking the
world's DNS over loopback as the threads did, with the same resolver cache
rule (kept while the zone's inputs stay the same). Opt-in
(``World(check_process=True)``, the standalone ``flowtest sandbox``): a test's
worlds keep the threads, which start in no time.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import multiprocessing

import dns.resolver

from flowtest.sandbox import checks

_cache: tuple[object, dns.resolver.Cache] | None = None  # in the worker


def _evaluate(raw: bytes, ip: str, mail_from: str, helo: str, dns_server: tuple[str, int],
              zone: object) -> checks.Verdicts:
    """In the worker: checks.evaluate with a resolver on the world's DNS."""
    global _cache
    if _cache is None or _cache[0] != zone:
        _cache = (zone, dns.resolver.Cache())
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [dns_server[0]]
    resolver.port = dns_server[1]
    resolver.lifetime = 3
    resolver.cache = _cache[1]
    return checks.evaluate(raw, ip=ip, mail_from=mail_from, helo=helo, resolver=resolver)


def _ready() -> bool:
    return True


class Checker:
    """One worker process; :meth:`close` ends it."""

    def __init__(self) -> None:
        # spawn, not fork: the sandbox process has threads (DNS, IMAP, its loop).
        self._pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        self._warm = self._pool.submit(_ready)  # start it now, not at the first message

    async def evaluate(self, raw: bytes, *, ip: str, mail_from: str, helo: str,
                       dns_server: tuple[str, int], zone: object) -> checks.Verdicts:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(
            _evaluate, raw, ip, mail_from, helo, dns_server, zone))

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
