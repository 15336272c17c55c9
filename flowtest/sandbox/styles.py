"""Authentication-Results as different receiving providers write them, so the
sandbox's external provider can play each profile of flowtest.providers and
flowtest's reader is tested on every form. Shapes follow public header
samples of each provider; details of the rarer ones are unconfirmed."""

from __future__ import annotations

from flowtest.sandbox.checks import Verdicts

STYLES = ("custom", "gmail", "outlook", "icloud", "qq", "163", "fastmail", "yahoo")


def _dkim(v: Verdicts, form: str) -> list[str]:
    if not v.dkim:
        return ["dkim=none"]
    out = []
    for d in v.dkim:
        if form == "gmail":
            out.append(f"dkim={d.result} header.i=@{d.domain} header.s={d.selector} "
                       f"header.b={d.b}")
        elif form == "outlook":
            out.append(f"dkim={d.result} (signature was verified) header.d={d.domain}")
        elif form == "fastmail":
            out.append(f"dkim={d.result} (1024-bit rsa key sha256) header.d={d.domain} "
                       f"header.i=@{d.domain} header.b={d.b} header.a=rsa-sha256 "
                       f"header.s={d.selector}")
        else:
            out.append(f"dkim={d.result} header.d={d.domain} header.s={d.selector} "
                       f"header.b={d.b}")
    return out


def results(style: str, v: Verdicts, *, ip: str, own: str) -> list[str]:
    """The Authentication-Results header line(s), topmost first."""
    spf, dmarc = v.spf, v.dmarc
    from_domain = dmarc.from_domain if dmarc else ""
    policy = dmarc.policy if dmarc else "none"
    dresult = dmarc.result if dmarc else "none"
    if style == "gmail":
        from flowtest.sandbox.gmail import results_clauses  # Gmail's own words
        return ["Authentication-Results: mx.google.com;\r\n       "
                + ";\r\n       ".join(results_clauses(v, ""))]
    if style == "outlook":
        # No authserv-id at all; compauth is Microsoft's own verdict.
        return ["Authentication-Results: spf=" + spf.result + f" (sender IP is {ip})\r\n "
                f"smtp.mailfrom={spf.domain}; " + "; ".join(_dkim(v, "outlook"))
                + f";dmarc={dresult} action=none\r\n header.from={from_domain};"
                f"compauth={'pass' if dresult == 'pass' else 'softpass'} reason=201"]
    if style == "icloud":
        # One header per method, each with its own icloud.com authserv-id.
        return [f"Authentication-Results: dmarc.icloud.com; dmarc={dresult} "
                f"header.from={from_domain}",
                "Authentication-Results: dkim-verifier.icloud.com; " + "; ".join(_dkim(v, "")),
                f"Authentication-Results: spf.icloud.com; spf={spf.result} "
                f"smtp.mailfrom={spf.mail_from}"]
    if style == "fastmail":
        return ["Authentication-Results: mx3.messagingengine.com;\r\n    "
                + ";\r\n    ".join([
                    *_dkim(v, "fastmail"),
                    f"dmarc={dresult} policy.published-domain-policy={policy} "
                    f"policy.applied-disposition=none policy.evaluated-disposition=none "
                    f"(p={policy},d=none,d.eval=none) policy.policy-from=p "
                    f"header.from={from_domain}",
                    f"spf={spf.result} smtp.mailfrom={spf.mail_from}"])]
    if style == "yahoo":
        # Note the comment glued to the result and the trailing ";".
        return ["Authentication-Results: atlas-production.v2.mail.bf1.yahoo.com;\r\n "
                + ";\r\n ".join([*_dkim(v, ""), f"spf={spf.result} smtp.mailfrom={spf.domain}",
                                 f"dmarc={dresult}(p={policy.upper()}) header.from={from_domain}"])
                + ";"]
    if style in ("qq", "163"):
        authserv = "newxmmxszc6-1.qq.com" if style == "qq" else "mx-out.163.com"
        return [f"Authentication-Results: {authserv}; " + "; ".join(
            [f"spf={spf.result} smtp.mailfrom={spf.mail_from}", *_dkim(v, ""),
             f"dmarc={dresult} header.from={from_domain}"])]
    clauses = [*_dkim(v, ""), f"spf={spf.result} smtp.mailfrom={spf.mail_from}",
               f"dmarc={dresult} (p={policy}) header.from={from_domain}" if dmarc
               else "dmarc=none"]
    if v.arc.result != "none":
        clauses.append(f"arc={v.arc.result}")
    return [f"Authentication-Results: {own};\r\n\t" + ";\r\n\t".join(clauses)]
