"""The sandbox world: Cloudflare, Gmail, an external provider and DNS, each a
real server set on its own loopback address, on one event loop in a thread
of its own."""

from __future__ import annotations

import asyncio
import secrets
import shutil
import string
import tempfile
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import dns.resolver

from flowtest import config as cfg
from flowtest.errors import SandboxError
from flowtest.model import Thresholds
from flowtest.sandbox import cfapi, hosts, loopthread, zone
from flowtest.sandbox.certs import Authority
from flowtest.sandbox.cfapi_state import Account as CloudflareAccount
from flowtest.sandbox.checker import Checker
from flowtest.sandbox.cloudflare import Cloudflare, Routing
from flowtest.sandbox.context import Context
from flowtest.sandbox.dns_server import DnsServer, ServFail
from flowtest.sandbox.external import External, ICloud
from flowtest.sandbox.faults import Faults
from flowtest.sandbox.gmail import Gmail
from flowtest.sandbox.hosts import Names
from flowtest.sandbox.keys import Keyring
from flowtest.sandbox.timing import Timing
from flowtest.sandbox.truth import Truth
from flowtest.secrets import Secret

T = TypeVar("T")

DEFAULT_ALIASES = ("hello", "shop", "billing")


def app_password() -> str:
    """16 lowercase letters shown in groups of four, as Google shows them."""
    letters = "".join(secrets.choice(string.ascii_lowercase) for _ in range(16))
    return " ".join(letters[i:i + 4] for i in range(0, 16, 4))


class World:
    """Start with :meth:`start` (or ``with World() as world``); stop with :meth:`stop`."""

    def __init__(
        self,
        *,
        domain: str = "example.me",
        aliases: tuple[str, ...] | list[str] = DEFAULT_ALIASES,
        faults: tuple[str, ...] | list[str] = (),
        keys: Keyring | None = None,
        gmail_address: str = "flowtest.owner@gmail.com",
        gmail_app_password: str | None = None,
        probe_address: str | None = None,
        probe_password: str | None = None,
        external_domain: str = "sender.example",
        catch_all: bool = False,
        external_style: str = "custom",
        retry_delays: tuple[float, ...] = (0.2, 0.5, 1.0, 2.0),
        gmail_signs_send_as: bool = True,
        gmail_default_from: str | None = None,
        timing: Timing | None = None,
        imap_threads: bool = False,
        check_process: bool = False,
    ) -> None:
        self.names = Names(domain=domain, external=external_domain)
        self.aliases = [a if "@" in a else f"{a}@{domain}" for a in aliases]
        self.faults = Faults(list(faults))
        self.keys = keys
        self.truth = Truth()
        self.gmail_address = gmail_address.lower()
        self.gmail_app_password = gmail_app_password or app_password()
        self.probe_address = (probe_address or f"probe@{external_domain}").lower()
        self.probe_password = probe_password or secrets.token_urlsafe(12)
        self.catch_all = catch_all
        from flowtest.sandbox.styles import STYLES
        if external_style not in STYLES:
            raise SandboxError(f"unknown style {external_style!r}; known: {', '.join(STYLES)}")
        self.external_style = external_style
        self.retry_delays = retry_delays
        # Gmail send-as with d=gmail.com and Sender: (the default), or unsigned;
        # both are seen in 2026 (FACTS.md). The fault sendas-unsigned forces the latter.
        self.gmail_signs_send_as = gmail_signs_send_as
        # The account's default sending identity (None: the Gmail address).
        self.gmail_default_from = gmail_default_from
        # Realistic hop delays (sandbox/timing.py), recorded in the truth as "held".
        self.timing = timing
        # Gmail's and the provider's IMAP servers on loops in threads of their
        # own (sandbox/mailstore.py): off for worlds in a test's process, on
        # in the standalone `flowtest sandbox` (docs/sandbox.md).
        self.imap_threads = imap_threads
        # The receivers' checks in a worker process (sandbox/checker.py): the
        # same choice, for the same reason, as imap_threads.
        self.check_process = check_process
        self._checker: Checker | None = None
        self.dns_extra: dict[tuple[str, str], list[str] | None] = {}
        self.dns_servfail: set[str] = set()  # names the DNS answers SERVFAIL for
        self._zone: tuple[int, zone.Records] | None = None  # (its generation, the zone)
        self._resolver_cache: tuple[int, dns.resolver.Cache] | None = None
        # The zone's generation goes up each time its inputs change (never
        # back): a cache labelled with an old one is never handed out again,
        # even when a fault is switched on and off again (K1 -> K2 -> K1).
        self._generation_lock = threading.Lock()
        self._generation_key: tuple[object, ...] | None = None
        self._generation = 0
        self.routing = Routing(domain)
        for alias in self.aliases:
            self.routing.forward(alias, self.gmail_address)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._workdir: Path | None = None
        self.ctx: Context | None = None
        self.dns: DnsServer | None = None
        self.cloudflare: Cloudflare | None = None
        self.gmail: Gmail | None = None
        self.external: External | None = None
        self.icloud: ICloud | None = None
        # Cloudflare's account behind its API: one state with the mail path.
        self.cf_token = secrets.token_urlsafe(30)
        self.cf_account = CloudflareAccount(self.routing, self.faults, self.gmail_address,
                                            self.cf_token)
        self.cf_api: cfapi.CloudflareApi | None = None

    # -- life cycle -----------------------------------------------------------

    def __enter__(self) -> World:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> World:
        if self._thread is not None:
            raise SandboxError("the world is already running")
        if self.keys is None:
            self.keys = Keyring.shared()  # made once per process
        self._workdir = Path(tempfile.mkdtemp(prefix="flowtest-sandbox-"))
        authority = Authority([
            *hosts.CF_MX_HOSTS, *hosts.CF_LEGACY_MX_HOSTS, "mx.cloudflare.net",
            hosts.GMAIL_MX_NAME, hosts.GMAIL_SMTP_NAME, hosts.GMAIL_IMAP_NAME, "mx.google.com",
            self.names.ext_smtp, self.names.ext_mx, self.names.ext_imap, *hosts.ICLOUD_MX_HOSTS,
            # IP identities too, so any plain client that connects by address verifies.
            hosts.GMAIL_SMTP, hosts.GMAIL_IMAP, hosts.EXT_SMTP, hosts.EXT_IMAP, *cfapi.NAMES,
        ])
        self.ca_file = authority.write_ca(self._workdir / "sandbox-ca.pem")
        self.dns = DnsServer(hosts.DNS, self._lookup)
        self.dns.start()
        if self.check_process:
            self._checker = Checker()
        self.ctx = Context(
            names=self.names, keys=self.keys, faults=self.faults, truth=self.truth,
            server_tls=authority.server_context(), client_tls=authority.client_context(),
            dns_server=(hosts.DNS, self.dns.port), retry_delays=self.retry_delays,
            timing=self.timing, dns_cache=self._dns_cache, imap_threads=self.imap_threads,
            checker=self._checker, zone=self._zone_generation)
        if self.catch_all:
            from flowtest.sandbox.cloudflare import Rule
            self.routing.catch_all = Rule("forward", self.gmail_address)
        self.cloudflare = Cloudflare(self.ctx, self.routing, self.cf_account)
        self.cf_api = cfapi.CloudflareApi(self.cf_account, authority.server_context())
        self.gmail = Gmail(self.ctx, address=self.gmail_address,
                           app_password=self.gmail_app_password, send_as=self.aliases,
                           signs_send_as=self.gmail_signs_send_as,
                           default_from=self.gmail_default_from)
        self.external = External(self.ctx, address=self.probe_address,
                                 password=self.probe_password, style=self.external_style)
        self.icloud = ICloud(self.ctx)

        self._loop, self._thread = loopthread.start("flowtest-sandbox")
        try:
            self.call(self._start())
        except BaseException:
            self.stop()
            raise
        return self

    async def _start(self) -> None:
        assert self.cloudflare and self.gmail and self.external and self.icloud
        await self.gmail.start()
        await self.external.start()
        await self.cloudflare.start()
        await self.icloud.start()
        assert self.cf_api is not None
        await self.cf_api.start()

    async def _stop(self) -> None:
        for party in (self.external, self.cloudflare, self.gmail, self.icloud, self.cf_api):
            if party is not None:
                await party.stop()
        loop = asyncio.get_running_loop()
        await loop.shutdown_default_executor()

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        loop, thread = self._loop, self._thread
        try:
            asyncio.run_coroutine_threadsafe(self._stop(), loop).result(timeout=30)
        finally:
            loopthread.stop(loop, thread, timeout=30)
            self._loop = None
            self._thread = None
            if self.dns is not None:
                self.dns.stop()
            if self._checker is not None:
                self._checker.close()
                self._checker = None
            if self._workdir is not None:
                shutil.rmtree(self._workdir, ignore_errors=True)
                self._workdir = None

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        """Run a coroutine on the world's loop from any other thread."""
        if self._loop is None:
            coro.close()
            raise SandboxError("the world is not running")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def check_errors(self) -> None:
        """Re-raise, in the caller, the first error a sandbox server hit."""
        if self.ctx is not None and self.ctx.errors:
            error = self.ctx.errors[0]
            self.ctx.errors.clear()
            raise SandboxError(f"sandbox server error: {error!r}") from error

    # -- faults and DNS -------------------------------------------------------

    def set_fault(self, spec: str) -> None:
        self.faults.set(spec)

    def clear_fault(self, name: str | None = None) -> None:
        self.faults.clear(name)

    def _zone_inputs(self) -> tuple[object, ...]:
        """Everything the DNS's answers depend on besides the world's fixed
        names and keys."""
        return (tuple(sorted(self.faults.active().items())),
                tuple(sorted((k, None if v is None else tuple(v))
                             for k, v in list(self.dns_extra.items()))),
                tuple(sorted(self.dns_servfail)))

    def _zone_generation(self) -> int:
        key = self._zone_inputs()
        with self._generation_lock:
            if key != self._generation_key:
                self._generation_key = key
                self._generation += 1
            return self._generation

    def _dns_cache(self) -> dns.resolver.Cache:
        """The receivers' and senders' resolver cache, as real MTAs keep one:
        shared across messages while the zone's inputs stay the same, a fresh
        one the moment a fault or override changes them, so a switch still
        shows at the next lookup. In a burst this saves most of a message's
        ~16 queries over loopback (dnspython on both ends, ~10 ms of CPU)."""
        generation = self._zone_generation()
        cached = self._resolver_cache
        if cached is not None and cached[0] == generation:
            return cached[1]
        cache = dns.resolver.Cache()
        self._resolver_cache = (generation, cache)
        return cache

    def _lookup(self, name: str, rdtype: str) -> list[str] | None:
        assert self.keys is not None
        # Every cache miss of every resolver reaches here: a message still in
        # flight since an older generation would store this answer in its
        # cache, so that cache is never handed out again.
        generation = self._zone_generation()
        cached_resolver = self._resolver_cache
        if cached_resolver is not None and cached_resolver[0] != generation:
            self._resolver_cache = None
        if name in self.dns_servfail:
            raise ServFail(name)
        # The zone follows the faults and a test's overrides at once; it is
        # rebuilt only when they changed, not for each of a message's ~16 queries.
        cached = self._zone
        if cached is not None and cached[0] == generation:
            records = cached[1]
        else:
            records = zone.build(self.names, self.keys, self.faults, self.dns_extra)
            cfapi.publish(records, self.names.domain, self.faults)
            # Kept only if nothing changed while it was built.
            if self._zone_generation() == generation:
                self._zone = (generation, records)
        return zone.lookup_in(records, name, rdtype)

    # -- what a user's config sees ---------------------------------------------

    def _endpoints(self) -> dict[str, cfg.Endpoint]:
        assert self.gmail and self.external
        return {
            "gmail.smtp": cfg.Endpoint(hosts.GMAIL_SMTP_NAME, self.gmail.submission.port,
                                       "starttls", hosts.GMAIL_SMTP),
            "gmail.imap": cfg.Endpoint(hosts.GMAIL_IMAP_NAME, self.gmail.store.port, "implicit",
                                       hosts.GMAIL_IMAP),
            "probe.smtp": cfg.Endpoint(self.names.ext_smtp, self.external.submission.port,
                                       "starttls", hosts.EXT_SMTP),
            "probe.imap": cfg.Endpoint(self.names.ext_imap, self.external.store.port,
                                       "implicit", hosts.EXT_IMAP),
        }

    def config(self) -> cfg.Config:
        """An ordinary flowtest config for this world, secrets by reference."""
        if self.dns is None or self._workdir is None:
            raise SandboxError("start the world before asking for its config")
        ep = self._endpoints()
        gmail_ref = self._workdir / "gmail-app-password"
        probe_ref = self._workdir / "probe-password"
        return cfg.Config(
            domain=self.names.domain,
            aliases=tuple(cfg.Alias(a) for a in self.aliases),
            gmail=cfg.Account(self.gmail_address, self.gmail_address,
                              Secret(f"file:{gmail_ref}", value=self.gmail_app_password),
                              ep["gmail.smtp"], ep["gmail.imap"], provider="gmail",
                              authserv_id="mx.google.com"),
            probe=cfg.Account(self.probe_address, self.probe_address,
                              Secret(f"file:{probe_ref}", value=self.probe_password),
                              ep["probe.smtp"], ep["probe.imap"],
                              provider=self.external_style,
                              authserv_id=self.names.ext_mx
                              if self.external_style == "custom" else None),
            target="sandbox",
            dns=cfg.DnsSettings(nameservers=((hosts.DNS, self.dns.port),), timeout_s=3.0),
            tls=cfg.TlsSettings(ca_file=self.ca_file),
            # The sandbox handles about 7 messages a second on 2 cores (its DKIM
            # and ARC signing is pure Python): allow for that in big sweeps.
            timeouts=cfg.Timeouts(connect_s=5.0, command_s=10.0,
                                  delivery_s=20.0 + 0.25 * len(self.aliases)),
            thresholds=Thresholds(latency_warn_s=5.0, latency_fail_s=15.0),
            cloudflare=self._cloudflare_settings(),
        )

    def _cloudflare_settings(self) -> cfg.CloudflareSettings | None:
        assert self._workdir is not None
        if self.cf_api is None or not self.cf_api.port:
            return None
        return cfg.CloudflareSettings(
            api_token=Secret(f"file:{self._workdir / 'cloudflare-token'}", value=self.cf_token),
            zone=self.names.domain, api_base=self.cf_api.api_base,
            rdap_base=self.cf_api.rdap_base)

    def write_config(self, path: Path | str) -> Path:
        """Write this world's config as flowtest.toml, secrets in files beside it."""
        conf = self.config()
        # Absolute: the config names its secret and CA files by path.
        path = Path(path).absolute()
        path.parent.mkdir(parents=True, exist_ok=True)
        secrets_dir = path.parent
        gmail_file = secrets_dir / f"{path.stem}.gmail-app-password"
        probe_file = secrets_dir / f"{path.stem}.probe-password"
        cf_file = secrets_dir / f"{path.stem}.cloudflare-token"
        ca_file = secrets_dir / f"{path.stem}.ca.pem"
        for file, value in ((gmail_file, self.gmail_app_password),
                            (probe_file, self.probe_password), (cf_file, self.cf_token)):
            file.write_text(value + "\n", encoding="utf-8")
            file.chmod(0o600)
        assert conf.tls.ca_file is not None
        shutil.copyfile(conf.tls.ca_file, ca_file)

        def endpoint(e: cfg.Endpoint) -> str:
            return (f'{{ host = "{e.host}", port = {e.port}, tls = "{e.tls}", '
                    f'address = "{e.address}" }}')

        ns = ", ".join(f'"{h}:{p}"' for h, p in conf.dns.nameservers)
        text = f'''\
# Written by `flowtest sandbox`: a config for the running sandbox world.
# It is valid only while that sandbox runs (its ports are ephemeral).
domain = "{conf.domain}"
aliases = [{", ".join(f'"{a.address}"' for a in conf.aliases)}]
target = "sandbox"
cleanup = "trash"

[gmail]
address = "{conf.gmail.address}"
app_password = "file:{gmail_file}"
authserv_id = "mx.google.com"
smtp = {endpoint(conf.gmail.smtp)}
imap = {endpoint(conf.gmail.imap)}

[probe]
address = "{conf.probe.address}"
password = "file:{probe_file}"
provider = "{conf.probe.provider}"
{f'authserv_id = "{conf.probe.authserv_id}"' if conf.probe.authserv_id else ""}
smtp = {endpoint(conf.probe.smtp)}
imap = {endpoint(conf.probe.imap)}

[dns]
nameservers = [{ns}]
timeout_s = {conf.dns.timeout_s}

[tls]
ca_file = "{ca_file}"

[timeouts]
connect_s = {conf.timeouts.connect_s}
command_s = {conf.timeouts.command_s}
delivery_s = {conf.timeouts.delivery_s}

[thresholds]
latency_warn_s = {conf.thresholds.latency_warn_s}
latency_fail_s = {conf.thresholds.latency_fail_s}
'''
        if conf.cloudflare is not None:
            text += f'''
[cloudflare]
api_token = "file:{cf_file}"
zone = "{conf.cloudflare.zone}"
api_base = "{conf.cloudflare.api_base}"
rdap_base = "{conf.cloudflare.rdap_base}"
'''
        # Atomic: a process waiting for this file never reads half of it.
        partial = path.with_name(path.name + ".partial")
        partial.write_text(text, encoding="utf-8")
        partial.replace(path)
        return path

    # -- the sandbox's own view of mailboxes (ground truth for tests) ----------

    def gmail_folder(self, folder: str = "INBOX") -> list[tuple[int, bytes, set[str]]]:
        assert self.gmail is not None
        return self.call(self.gmail.store.folder_contents(self.gmail_address, folder))

    def probe_folder(self, folder: str = "INBOX") -> list[tuple[int, bytes, set[str]]]:
        assert self.external is not None
        return self.call(self.external.store.folder_contents(self.probe_address, folder))
