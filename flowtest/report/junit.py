"""JUnit XML of a run: one test case per probe and per DNS problem, so any CI
shows flowtest's results in its test tab."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from flowtest.i18n import gettext as _
from flowtest.secrets import redact

# XML 1.0 allows no control character but tab, newline and carriage return
# (§2.2); a server's reply quoted in a diagnosis may hold any.
# The bidi overrides are legal XML but reorder what a reader of the CI page
# sees (CVE-2021-42574): shown as "?" too.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff"
                      "\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _well_formed(suite: ET.Element) -> None:
    for el in suite.iter():
        if el.text:
            el.text = _NOT_XML.sub("?", el.text)
        for key, value in el.attrib.items():
            el.attrib[key] = _NOT_XML.sub("?", value)


def build(report: dict[str, Any]) -> bytes:
    probes = report["probes"]
    dns = [f for f in report["dns"] if f["severity"] in ("error", "warning")]
    failures = sum(p["verdict"] == "fail" for p in probes) + sum(
        f["severity"] == "error" for f in dns)
    errors = sum(p["verdict"] == "error" for p in probes)
    suite = ET.Element("testsuite", name="flowtest", tests=str(len(probes) + len(dns) or 1),
                       failures=str(failures), errors=str(errors),
                       timestamp=report["started_at"])
    if report.get("plaintext") or report.get("insecure"):
        # A CI reader sees the run's transport was not safe without opening the HTML.
        props = ET.SubElement(suite, "properties")
        for name, value in (("plaintext", ", ".join(report.get("plaintext") or ())),
                            ("insecure", "true" if report.get("insecure") else "")):
            if value:
                ET.SubElement(props, "property", name=name, value=value)
    for p in probes:
        case = ET.SubElement(suite, "testcase", classname=f"flowtest.{p['leg']}",
                             name=p["alias"],
                             time=f"{p['latency_s'] or 0:.3f}")
        text = "\n".join(p["diagnosis"])
        # The headline's code as the failure's type: CI tools group on it.
        codes = [f["code"] for f in p.get("findings", ())]
        kind = {"type": codes[0]} if codes else {}
        if p["verdict"] == "fail":
            ET.SubElement(case, "failure", message=p["diagnosis"][0] if p["diagnosis"]
                          else _("failed"), **kind).text = text
        elif p["verdict"] == "error":
            ET.SubElement(case, "error", message=p["diagnosis"][0] if p["diagnosis"]
                          else _("error"), **kind).text = text
        ET.SubElement(case, "system-out").text = text
    # Tags, names and classes are structure (CI tools read them); only the
    # messages and texts are people's words.
    for f in dns:
        fix = _("fix: {fix}").format(fix=f["fix"])
        case = ET.SubElement(suite, "testcase", classname="flowtest.dns", name=f["code"])
        if f["severity"] == "error":
            ET.SubElement(case, "failure", message=f["message"]).text = fix
        else:
            ET.SubElement(case, "system-out").text = f"{f['message']}\n{fix}"
    if not probes and not dns:
        ET.SubElement(suite, "testcase", classname="flowtest.dns", name="all-clear")
    _well_formed(suite)
    return redact(ET.tostring(suite, encoding="unicode", xml_declaration=True)).encode()


def write(report: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(build(report))
    return path
