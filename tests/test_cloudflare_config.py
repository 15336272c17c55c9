"""The optional [cloudflare] section: typed, by reference, https only; the
sandbox writes it so a written config reaches the sandbox's API too."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from flowtest import config as cfg
from flowtest.doctor import diagnose
from flowtest.errors import ConfigError
from flowtest.sandbox import World
from tests.test_config import GOOD, write


def test_absent_section_is_none(tmp_path: Path) -> None:
    assert cfg.load(write(tmp_path, GOOD)).cloudflare is None


def test_section_is_typed_with_defaults(tmp_path: Path) -> None:
    c = cfg.load(write(tmp_path, GOOD + '[cloudflare]\napi_token = "env:CF_TOKEN"\n'))
    assert c.cloudflare is not None
    assert c.cloudflare.zone == "example.me" and c.cloudflare.api_token.ref == "env:CF_TOKEN"
    assert c.cloudflare.api_base == "https://api.cloudflare.com/client/v4"


@pytest.mark.parametrize(("body", "key"), [
    ('zone = "example.me"', "cloudflare.api_token"),
    ('api_token = "abcdef0123456789"', "cloudflare.api_token"),       # a literal token
    ('api_token = "env:X"\nzone = "other.example"', "cloudflare.zone"),
    ('api_token = "env:X"\napi_base = "http://api.cloudflare.com/client/v4"',
     "cloudflare.api_base"),
    ('api_token = "env:X"\napi_base = "https://u:p@api.cloudflare.com"', "cloudflare.api_base"),
    ('api_token = "env:X"\nzone_id = "abc"', "cloudflare.zone_id"),
    ('api_token = 5', "cloudflare.api_token"),
])
def test_each_mistake_is_named(tmp_path: Path, body: str, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        cfg.load(write(tmp_path, GOOD + "[cloudflare]\n" + body + "\n"))
    assert key in str(err.value)
    assert "abcdef0123456789" not in str(err.value)


def test_the_sandbox_writes_a_section_that_reaches_its_api(world: World,
                                                           tmp_path: Path) -> None:
    path = world.write_config(tmp_path / "flowtest.toml")
    loaded = cfg.load(path)
    assert loaded.cloudflare is not None
    assert loaded.cloudflare.api_token.ref.startswith("file:")
    assert world.cf_token not in path.read_text(encoding="utf-8")
    got = {f.code for f in asyncio.run(diagnose(loaded))}
    assert {"CF_TOKEN_OK", "CF_ROUTING_READY"} <= got
