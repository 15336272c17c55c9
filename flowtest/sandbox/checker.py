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

from flowtest import guard
from flowtest.sandbox import checks

_cache: tuple[object, dns.resolver.Cache] | None = None  # in the worker


def _evaluate(raw: bytes, ip: str, mail_from: str, helo: str, dns_server: tuple[str, int],
              zone: object) -> checks.Verdicts:
    """In the worker: checks.evaluate with a resolver on the world's DNS.
    ``zone`` is the world's zone generation, which never repeats, so a cache
    filled under an older one is never used again."""
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
        self._pool = self._start()

    @staticmethod
    def _start() -> concurrent.futures.ProcessPoolExecutor:
        # spawn, not fork: the sandbox process has threads (DNS, IMAP, its loop).
        # The worker keeps the network guard too: it talks to the world's DNS only.
        pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=1, mp_context=multiprocessing.get_context("spawn"),
            initializer=guard.enable)
        pool.submit(_ready)  # start it now, not at the first message
        return pool

    async def evaluate(self, raw: bytes, *, ip: str, mail_from: str, helo: str,
                       dns_server: tuple[str, int], zone: object) -> checks.Verdicts:
        loop = asyncio.get_running_loop()
        call = functools.partial(_evaluate, raw, ip, mail_from, helo, dns_server, zone)
        try:
            return await loop.run_in_executor(self._pool, call)
        except concurrent.futures.process.BrokenProcessPool:
            # The worker died (killed, out of memory): start another, once,
            # rather than failing every later delivery.
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._start()
            return await loop.run_in_executor(self._pool, call)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
