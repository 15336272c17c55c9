"""The sandbox's authoritative DNS: dnspython messages over UDP and TCP.

It runs in threads of its own, not on the world's event loop: pyspf and
dkimpy make blocking DNS queries, and a server on the same loop would hang.
Answers are computed per query from a callback, so faults switched at run
time show up at once.
"""

from __future__ import annotations

import functools
import socket
import socketserver
import struct
import threading
from collections.abc import Callable

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

# name (lowercase, no trailing dot) -> rdtype text -> list of rdata texts;
# None when the name does not exist at all (NXDOMAIN).
Lookup = Callable[[str, str], list[str] | None]


class ServFail(Exception):
    """Raised by a lookup to make the server answer SERVFAIL."""


@functools.lru_cache(maxsize=1024)
def txt_rdata(text: str) -> str:
    """A TXT value as quoted strings of at most 255 octets (RFC 1035 §3.3.14).

    Cached: the zone is rebuilt for every query (faults switch at run time),
    and escaping its 2048-bit keys character by character was most of the DNS
    server's CPU in a burst (about 9 ms of every message's 50)."""
    data = text.encode("utf-8")
    chunks = [data[i:i + 255] for i in range(0, len(data), 255)] or [b""]
    return " ".join('"' + "".join(_txt_char(b) for b in c) + '"' for c in chunks)


def _txt_char(octet: int) -> str:
    """One octet in master-file syntax: anything but printable ASCII as \\DDD, so
    a record may hold what real ones can (control characters, UTF-8)."""
    if octet in (0x22, 0x5C):
        return "\\" + chr(octet)
    return chr(octet) if 0x20 <= octet < 0x7F else f"\\{octet:03d}"


def answer(lookup: Lookup, wire: bytes) -> dns.message.Message | None:
    try:
        query = dns.message.from_wire(wire)
    except dns.exception.DNSException:
        return None
    response = dns.message.make_response(query)
    response.flags |= dns.flags.AA
    if not query.question:
        response.set_rcode(dns.rcode.FORMERR)
        return response
    q = query.question[0]
    name = q.name.to_text(omit_final_dot=True).lower()
    rdtype = dns.rdatatype.to_text(q.rdtype)
    try:
        records = lookup(name, rdtype)
    except ServFail:
        response.set_rcode(dns.rcode.SERVFAIL)
        return response
    if records is None:
        response.set_rcode(dns.rcode.NXDOMAIN)
        return response
    if records:
        response.answer.append(_rrset(q.name, q.rdtype, tuple(records)))
    return response


@functools.lru_cache(maxsize=4096)
def _rrset(name: dns.name.Name, rdtype: dns.rdatatype.RdataType,
           records: tuple[str, ...]) -> dns.rrset.RRset:
    """Parsing rdata text is most of a query's cost, and a burst asks for the
    same few records thousands of times. Keyed by the text itself, so a fault
    that changes a record is answered at once."""
    return dns.rrset.from_text_list(name, 300, dns.rdataclass.IN, rdtype, list(records))


class _Udp(socketserver.BaseRequestHandler):
    server: _UdpServer

    def handle(self) -> None:
        data, sock = self.request
        response = answer(self.server.lookup, data)
        if response is None:
            return
        self.server.queries += 1
        limit = 512
        if response.edns >= 0:
            limit = max(512, response.payload)
        try:
            wire = response.to_wire(max_size=limit)
        except dns.exception.TooBig:
            # dnspython raises instead of truncating: send an empty TC answer
            # so the client retries over TCP.
            response.answer.clear()
            response.flags |= dns.flags.TC
            wire = response.to_wire()
        sock.sendto(wire, self.client_address)


class _Tcp(socketserver.BaseRequestHandler):
    server: _TcpServer

    def handle(self) -> None:
        conn: socket.socket = self.request
        conn.settimeout(5)
        try:
            while True:
                head = conn.recv(2)
                if len(head) < 2:
                    return
                (size,) = struct.unpack("!H", head)
                data = b""
                while len(data) < size:
                    chunk = conn.recv(size - len(data))
                    if not chunk:
                        return
                    data += chunk
                response = answer(self.server.lookup, data)
                if response is None:
                    return
                self.server.queries += 1
                wire = response.to_wire()
                conn.sendall(struct.pack("!H", len(wire)) + wire)
        except OSError:
            return


class _UdpServer(socketserver.UDPServer):
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], lookup: Lookup) -> None:
        self.lookup = lookup
        self.queries = 0
        super().__init__(address, _Udp)


class _TcpServer(socketserver.TCPServer):
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], lookup: Lookup) -> None:
        self.lookup = lookup
        self.queries = 0
        super().__init__(address, _Tcp)


class DnsServer:
    """UDP and TCP on one port of ``host``; :attr:`port` is known after start."""

    def __init__(self, host: str, lookup: Lookup) -> None:
        self.host = host
        self.lookup = lookup
        self.port = 0
        self._servers: list[socketserver.BaseServer] = []
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        last: OSError | None = None
        for _ in range(20):
            udp = _UdpServer((self.host, 0), self.lookup)
            port = udp.server_address[1]
            try:
                tcp = _TcpServer((self.host, port), self.lookup)
            except OSError as exc:  # the port is taken over TCP: try another
                udp.server_close()
                last = exc
                continue
            self.port = port
            self._servers = [udp, tcp]
            break
        else:
            raise OSError(f"no free port for DNS on {self.host}: {last}")
        for server in self._servers:
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                      name=f"sandbox-dns-{type(server).__name__}", daemon=True)
            thread.start()
            self._threads.append(thread)

    @property
    def queries(self) -> int:
        return sum(getattr(s, "queries", 0) for s in self._servers)

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._servers.clear()
        self._threads.clear()
