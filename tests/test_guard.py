"""The network guard refuses anything outside 127.0.0.0/8 (it is on for the suite)."""

from __future__ import annotations

import asyncio
import socket

import dns.message
import dns.query
import pytest

from flowtest import guard
from flowtest.errors import NetworkGuardError


def test_the_suite_runs_under_the_guard() -> None:
    assert guard.active()


@pytest.mark.parametrize("address", [("10.0.0.1", 25), ("192.0.2.1", 443), ("8.8.8.8", 53)])
def test_tcp_connect_outside_loopback_is_refused(address: tuple[str, int]) -> None:
    with socket.socket() as s, pytest.raises(NetworkGuardError) as refused:
        s.connect(address)
    assert refused.value.target == address


def test_udp_dns_query_outside_loopback_is_refused() -> None:
    with pytest.raises(NetworkGuardError):
        dns.query.udp(dns.message.make_query("example.me", "MX"), "1.1.1.1", timeout=1)


def test_name_lookup_is_refused() -> None:
    with pytest.raises(NetworkGuardError):
        socket.getaddrinfo("smtp.gmail.com", 587)


def test_asyncio_connections_are_refused_too() -> None:
    async def connect() -> None:
        await asyncio.open_connection("203.0.113.5", 993)

    with pytest.raises(NetworkGuardError):
        asyncio.run(connect())


def test_loopback_is_allowed() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.9", 0))
        server.listen()
        with socket.create_connection(server.getsockname(), timeout=2):
            pass
