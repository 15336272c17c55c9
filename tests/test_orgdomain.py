"""The organizational domain from the PSL: A-labels and U-labels alike, and
without importing authheaders (whose import cost a one-probe run 75 ms)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from flowtest.mail.orgdomain import org_domain, public_suffix


@pytest.mark.parametrize(("name", "suffix", "org"), [
    ("a.b.co.uk", "co.uk", "b.co.uk"),
    ("www.example.me", "me", "example.me"),
    ("a.test", "test", "a.test"),                       # the default rule "*"
    ("foo.city.kawasaki.jp", "kawasaki.jp", "city.kawasaki.jp"),  # !exception
    ("x.y.kawasaki.jp", "y.kawasaki.jp", "x.y.kawasaki.jp"),      # *.wildcard
    ("a.b.xn--55qx5d.cn", "xn--55qx5d.cn", "b.xn--55qx5d.cn"),    # 公司.cn as A-labels
    ("a.b.公司.cn", "公司.cn", "b.公司.cn"),                       # and as U-labels
    ("shop.xn--p1ai", "xn--p1ai", "shop.xn--p1ai"),               # .рф
    ("xn--zz.example.", "example", "xn--zz.example"),             # bad punycode: no crash
])
def test_psl_rules(name: str, suffix: str, org: str) -> None:
    assert public_suffix(name) == suffix
    assert org_domain(name) == org


def test_reading_the_psl_does_not_import_authheaders() -> None:
    code = ("import sys; from flowtest.mail.orgdomain import org_domain; "
            "assert org_domain('mail.example.co.uk') == 'example.co.uk'; "
            "print(sorted(m for m in ('authheaders', 'dkim', 'spf') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_comment_lines_of_the_psl_are_not_rules() -> None:
    from flowtest.mail.orgdomain import _psl_text
    comment = next(line for line in _psl_text().splitlines()
                   if line.startswith("//") and "." in line.split("//", 1)[1])
    name = f"x.{comment.lower()}"   # a hostile "host name" quoting the comment
    assert public_suffix(name) == name.rsplit(".", 1)[1]
