"""DNS lookups for the doctor: the configured resolver, answers with a status
instead of exceptions, so a failure is reported, never mistaken for "absent"."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.resolver

from flowtest.config import DnsSettings

Status = Literal["ok", "nodata", "nxdomain", "servfail", "timeout"]


@dataclass(frozen=True)
class Answer:
    name: str
    rdtype: str
    status: Status
    records: tuple[str, ...] = ()

    @property
    def failed(self) -> bool:
        """The resolver could not say (as opposed to "there is nothing")."""
        return self.status in ("servfail", "timeout")


class DnsClient:
    def __init__(self, settings: DnsSettings) -> None:
        if settings.nameservers:
            resolver = dns.asyncresolver.Resolver(configure=False)
            resolver.nameservers = [dns.nameserver.Do53Nameserver(host, port)
                                    for host, port in settings.nameservers]
        else:
            resolver = dns.asyncresolver.Resolver()
        resolver.lifetime = settings.timeout_s
        resolver.timeout = min(settings.timeout_s, 2.0)
        self.resolver = resolver
        self.queries = 0

    async def query(self, name: str, rdtype: str) -> Answer:
        self.queries += 1
        try:
            answer = await self.resolver.resolve(name, rdtype, search=False)
        except dns.resolver.NXDOMAIN:
            return Answer(name, rdtype, "nxdomain")
        except dns.resolver.NoAnswer:
            return Answer(name, rdtype, "nodata")
        except dns.resolver.NoNameservers:
            return Answer(name, rdtype, "servfail")
        except (dns.exception.Timeout, dns.resolver.LifetimeTimeout):
            return Answer(name, rdtype, "timeout")
        except dns.exception.DNSException:
            return Answer(name, rdtype, "servfail")
        records: list[str] = []
        for rdata in answer:
            if rdtype == "TXT":
                records.append(b"".join(rdata.strings).decode("utf-8", "replace"))
            elif rdtype == "MX":
                records.append(f"{rdata.preference} "
                               f"{rdata.exchange.to_text(omit_final_dot=True).lower()}")
            elif rdtype in ("NS", "CNAME", "PTR"):
                records.append(rdata.target.to_text(omit_final_dot=True).lower())
            else:
                records.append(rdata.to_text())
        return Answer(name, rdtype, "ok", tuple(records))
