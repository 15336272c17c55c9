"""TLS contexts for clients: verified always, unless the user said --insecure."""

from __future__ import annotations

import functools
import os
import ssl
from pathlib import Path

from flowtest.config import TlsSettings
from flowtest.i18n import gettext as _


def client_context(settings: TlsSettings) -> ssl.SSLContext:
    """One context per settings (and CA file version) for the whole process:
    loading the system's CA store costs about 50 ms of CPU, which was most of
    a probe's CPU when every connection built its own context. A context is
    safe to share between connections and event loops."""
    stamp = None
    if settings.ca_file is not None:
        try:
            st = os.stat(settings.ca_file)
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        except OSError:
            stamp = None  # let loading it report the problem
    return _context(settings.ca_file, settings.insecure, stamp)


@functools.lru_cache(maxsize=8)
def _context(ca_file: Path | None, insecure: bool,
             stamp: tuple[int, int, int] | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if ca_file is not None:
        ctx.load_verify_locations(cafile=str(ca_file))
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def describe(exc: BaseException) -> str:
    """A certificate error in words: expired, wrong host, unknown issuer."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _("certificate not trusted: {reason}").format(
            reason=exc.verify_message or exc.reason)
    return _("TLS failed: {error}").format(error=exc)
