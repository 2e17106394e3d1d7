"""Fetching document URLs: prefixes, forbidden addresses, redirects, limits, error classes."""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import ipaddress
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from bridge.fetch import (
    AddressForbidden,
    DocumentFetcher,
    Fetched,
    FetchFailed,
    FetchPolicy,
    FetchRefused,
    GuardedResolver,
    address_refusal,
    check_url,
    policy_from_config,
)
from bridge.localsynapse import free_port

PDF = b"%PDF-1.4 specification K987-02.02-001"
LOOPBACK = (ipaddress.ip_network("127.0.0.1/32"),)
HUGE = 10_000_000


# A local server ----------------------------------------------------------------------------------


class Server:
    """An HTTP server on 127.0.0.1 that records every request it gets."""

    def __init__(self) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.hits: list[str] = []
        # Handlers that hold a request open wait for this; set when the server stops.
        self.release = asyncio.Event()
        self.app = web.Application(middlewares=[self._record])
        self._routes()

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.hits.append(request.path_qs)
        response: web.StreamResponse = await handler(request)
        return response

    def _routes(self) -> None:
        add = self.app.router.add_get
        add("/files/doc.pdf", self.doc)
        add("/files/plain", self.plain)
        add("/files/redirect", self.redirect)
        add("/files/chain/{n}", self.chain)
        add("/files/sized/{n}", self.sized)
        add("/files/chunked/{n}", self.chunked)
        add("/files/announced", self.announced)
        add("/files/stall", self.stall)
        add("/files/status/{code}", self.status)
        add("/files/encoded/{coding}", self.encoded)
        add("/files/set-cookie", self.set_cookie)
        add("/files/echo-cookie", self.echo_cookie)
        add("/files-secret", self.secret)
        add("/admin", self.secret)

    async def doc(self, request: web.Request) -> web.Response:
        return web.Response(body=PDF, content_type="application/pdf")

    async def plain(self, request: web.Request) -> web.Response:
        return web.Response(text="привет", content_type="text/plain", charset="utf-8")

    async def secret(self, request: web.Request) -> web.Response:
        return web.Response(text="secret")

    async def redirect(self, request: web.Request) -> web.Response:
        status = int(request.query.get("status", "302"))
        return web.Response(status=status, headers={"Location": request.query["to"]})

    async def chain(self, request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        if n == 0:
            return web.Response(body=PDF, content_type="application/pdf")
        return web.Response(status=302, headers={"Location": f"/files/chain/{n - 1}"})

    async def sized(self, request: web.Request) -> web.Response:
        return web.Response(body=b"x" * int(request.match_info["n"]))

    async def chunked(self, request: web.Request) -> web.StreamResponse:
        n = int(request.match_info["n"])
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        sent = 0
        try:
            while sent < n:
                piece = min(1024, n - sent)
                await response.write(b"y" * piece)
                sent += piece
        except (ConnectionError, RuntimeError):
            return response
        await response.write_eof()
        return response

    async def announced(self, request: web.Request) -> web.StreamResponse:
        # Announces far more than the limit, sends a little and then nothing: a client that
        # started reading would wait here until its timeout.
        response = web.StreamResponse()
        response.content_length = HUGE
        await response.prepare(request)
        await response.write(b"z" * 10)
        await self.release.wait()
        return response

    async def stall(self, request: web.Request) -> web.Response:
        await self.release.wait()
        return web.Response(text="too late")

    async def status(self, request: web.Request) -> web.Response:
        code = int(request.match_info["code"])
        return web.Response(status=code, text="error page " + "e" * 5000)

    async def encoded(self, request: web.Request) -> web.Response:
        coding = request.match_info["coding"]
        size = int(request.query.get("size", "0"))
        bodies = {
            "gzip": gzip.compress(b"\0" * size),
            "two-members": gzip.compress(b"first,") + gzip.compress(b"second"),
            "truncated": gzip.compress(PDF)[:-10],
            "garbage": b"this is not gzip at all",
            "br": b"\x1b\x00\x00",
        }
        header = "br" if coding == "br" else "gzip"
        return web.Response(body=bodies[coding], headers={"Content-Encoding": header})

    async def set_cookie(self, request: web.Request) -> web.Response:
        response = web.Response(text="cookie set")
        response.set_cookie("session", "s3cret", path="/")
        return response

    async def echo_cookie(self, request: web.Request) -> web.Response:
        return web.Response(text=request.headers.get("Cookie", ""))

    def prefix(self, path: str = "/files") -> str:
        return self.base + path


@asynccontextmanager
async def serve() -> AsyncIterator[Server]:
    server = Server()
    runner = web.AppRunner(server.app, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", server.port).start()
    try:
        yield server
    finally:
        server.release.set()
        await runner.cleanup()


@asynccontextmanager
async def serve_raw(answer: bytes) -> AsyncIterator[str]:
    """A server that answers every connection with exactly `answer`; yields its base URL."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)
        await writer.drain()
        writer.close()

    listener = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        listener.close()
        await listener.wait_closed()


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    async with serve() as started:
        yield started


@pytest.fixture
async def fetcher() -> AsyncIterator[Callable[..., DocumentFetcher]]:
    """Makes fetchers (policy keywords as arguments) and closes them after the test."""
    made: list[DocumentFetcher] = []

    def make(**policy: Any) -> DocumentFetcher:
        made.append(DocumentFetcher(FetchPolicy(**policy)))
        return made[-1]

    yield make
    for one in made:
        await one.close()


def local(server: Server, **policy: Any) -> dict[str, Any]:
    """A policy admitting the server's /files, its loopback address listed."""
    return {"allow": (server.prefix(),), "allow_networks": LOOPBACK, **policy}


@asynccontextmanager
async def elapsed_below(seconds: float) -> AsyncIterator[None]:
    start = time.monotonic()
    yield
    assert time.monotonic() - start < seconds


# Static checks: prefixes -------------------------------------------------------------------------

ERP = FetchPolicy(allow=("https://erp.example/files",))


def test_nothing_is_allowed_by_default() -> None:
    with pytest.raises(
        FetchRefused, match=r"https://erp\.example/a\.pdf.*documents\.fetch\.allow"
    ):
        check_url("https://erp.example/a.pdf", FetchPolicy())


@pytest.mark.parametrize(
    "url",
    [
        "https://erp.example/files",
        "https://erp.example/files/",
        "https://erp.example/files/a.pdf",
        "https://erp.example/files?x=1",
        "https://erp.example/files/a.pdf#page=2",
        "https://ERP.Example/files/a.pdf",
        "HTTPS://erp.example:443/files/a.pdf",
        "https://erp.example/files/sub/../a.pdf",
        "https://erp.example/files/%D0%B4%D0%BE%D0%BA.pdf",
    ],
)
def test_urls_under_a_prefix_pass(url: str) -> None:
    check_url(url, ERP)


@pytest.mark.parametrize(
    "url",
    [
        "https://erp.example/files-secret",
        "https://erp.example/filesx/a.pdf",
        "https://erp.example/",
        "https://erp.example/admin",
        "https://erp.example/Files/a.pdf",
        "http://erp.example/files/a.pdf",
        "https://erp.example:8443/files/a.pdf",
        "https://erp.example:80/files/a.pdf",
        "https://sub.erp.example/files/a.pdf",
        "https://erp.example.evil/files/a.pdf",
        "https://evil-erp.example/files/a.pdf",
    ],
)
def test_urls_outside_every_prefix_are_refused(url: str) -> None:
    with pytest.raises(FetchRefused, match="not under any URL prefix"):
        check_url(url, ERP)


@pytest.mark.parametrize(
    ("prefix", "url"),
    [
        ("https://erp.example:443/files", "https://erp.example/files/a.pdf"),
        ("https://erp.example/files/", "https://erp.example/files/a.pdf"),
        ("https://erp.example/files/", "https://erp.example/files"),
        ("https://erp.example", "https://erp.example/anything"),
        ("http://erp.example:8080/", "http://erp.example:8080/x"),
        ("https://bücher.example/docs", "https://xn--bcher-kva.example/docs/a.pdf"),
        ("https://xn--bcher-kva.example/docs", "https://BÜCHER.example/docs/a.pdf"),
        ("https://erp.example/файлы", "https://erp.example/%D1%84%D0%B0%D0%B9%D0%BB%D1%8B/a"),
    ],
)
def test_prefixes_compare_normalised(prefix: str, url: str) -> None:
    check_url(url, FetchPolicy(allow=(prefix,)))


@pytest.mark.parametrize(
    "url",
    [
        "https://erp.example/files/../admin",
        "https://erp.example/files/%2e%2e/admin",
        "https://erp.example/files/%2E%2E/admin",
        "https://erp.example/files/.%2e/admin",
        "https://erp.example/files/sub/../../admin",
        "https://erp.example/files/..",
    ],
)
def test_dot_segments_cannot_escape_a_prefix(url: str) -> None:
    with pytest.raises(FetchRefused, match="not under any URL prefix"):
        check_url(url, ERP)


@pytest.mark.parametrize(
    "url",
    [
        "https://erp.example/files/..%2Fadmin",
        "https://erp.example/files/%2e%2e%2fadmin",
        "https://erp.example/files/..%5Cadmin",
        "https://erp.example/files/..\\admin",
    ],
)
def test_encoded_separators_are_refused(url: str) -> None:
    with pytest.raises(FetchRefused, match="encoded slash"):
        check_url(url, ERP)


@pytest.mark.parametrize(
    "url",
    [
        "https://user:hunter2@erp.example/files/a.pdf",
        "https://user@erp.example/files/a.pdf",
        "https://:hunter2@erp.example/files/a.pdf",
    ],
)
def test_user_info_is_refused_and_not_repeated(url: str) -> None:
    with pytest.raises(FetchRefused, match="user info") as caught:
        check_url(url, ERP)
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://erp.example/files/a.pdf",
        "file:///etc/passwd",
        "gopher://erp.example/files",
        "data:text/plain,hello",
        "javascript:alert(1)",
        "ws://erp.example/files/a",
        "/files/a.pdf",
        "erp.example/files/a.pdf",
        "http:///files/a.pdf",
        "",
    ],
)
def test_only_absolute_http_urls(url: str) -> None:
    with pytest.raises(FetchRefused):
        check_url(url, ERP)


def test_invalid_url_is_refused() -> None:
    with pytest.raises(FetchRefused, match="not a valid URL"):
        check_url("http://erp.example:99999/files", ERP)


# Static checks: addresses ------------------------------------------------------------------------

FORBIDDEN_HOSTS = [
    "127.0.0.1",
    "127.8.9.10",
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "100.64.0.1",
    "169.254.169.254",
    "0.0.0.0",  # noqa: S104
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "[::1]",
    "[::]",
    "[fc00::1]",
    "[fd12:3456::1]",
    "[fe80::1]",
    "[ff02::1]",
    "[::ffff:127.0.0.1]",
    "[::ffff:169.254.169.254]",
    "[::ffff:10.0.0.1]",
    "[::127.0.0.1]",
    "[64:ff9b::127.0.0.1]",
    "[64:ff9b::a9fe:a9fe]",
    "[2002:7f00:1::1]",
    "[2002:a9fe:a9fe::]",
    "[2001:db8::1]",
]


@pytest.mark.parametrize("host", FORBIDDEN_HOSTS)
def test_forbidden_ip_literals_are_refused(host: str) -> None:
    policy = FetchPolicy(allow=(f"http://{host}/",))
    with pytest.raises(FetchRefused, match=r"is a .* address; list its network in documents"):
        check_url(f"http://{host}/doc.pdf", policy)


@pytest.mark.parametrize("host", ["8.8.8.8", "[2606:4700::1111]", "[::ffff:8.8.8.8]"])
def test_public_ip_literals_pass(host: str) -> None:
    check_url(f"http://{host}/doc.pdf", FetchPolicy(allow=(f"http://{host}/",)))


@pytest.mark.parametrize(
    ("host", "network"),
    [
        ("127.0.0.1", "127.0.0.1/32"),
        ("10.1.2.3", "10.0.0.0/8"),
        ("[::ffff:127.0.0.1]", "127.0.0.0/8"),
        ("[fd00::5]", "fd00::/8"),
        ("169.254.169.254", "169.254.169.254/32"),
    ],
)
def test_listed_networks_are_allowed(host: str, network: str) -> None:
    policy = FetchPolicy(
        allow=(f"http://{host}/",), allow_networks=(ipaddress.ip_network(network),)
    )
    check_url(f"http://{host}/doc.pdf", policy)


def test_a_listed_network_allows_only_itself() -> None:
    policy = FetchPolicy(
        allow=("http://10.0.0.1/", "http://127.0.0.1/"),
        allow_networks=(ipaddress.ip_network("10.0.0.0/8"),),
    )
    check_url("http://10.0.0.1/a", policy)
    with pytest.raises(FetchRefused, match="loopback"):
        check_url("http://127.0.0.1/a", policy)


@pytest.mark.parametrize("host", ["2130706433", "127.1", "0x7f.0.0.1", "0177.0.0.1", "127.0.0.1."])
def test_legacy_numeric_hosts_are_refused(host: str) -> None:
    policy = FetchPolicy(allow=("http://127.0.0.1/",), allow_networks=LOOPBACK)
    with pytest.raises(FetchRefused, match="canonical"):
        check_url(f"http://{host}/doc.pdf", policy)


def test_address_refusal_names_the_kind() -> None:
    assert address_refusal(ipaddress.ip_address("127.0.0.1")) == "loopback"
    assert address_refusal(ipaddress.ip_address("169.254.169.254")) == "link-local"
    assert address_refusal(ipaddress.ip_address("10.0.0.1")) == "private"
    assert address_refusal(ipaddress.ip_address("224.0.0.1")) == "multicast"
    assert address_refusal(ipaddress.ip_address("0.0.0.0")) == "unspecified"  # noqa: S104
    assert "127.0.0.1" in (address_refusal(ipaddress.ip_address("::ffff:127.0.0.1")) or "")
    assert address_refusal(ipaddress.ip_address("93.184.216.34")) is None


# The resolver ------------------------------------------------------------------------------------


class FakeResolver(AbstractResolver):
    """Answers with the next of `answers` on every lookup (DNS that changes its mind)."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers: Iterator[list[str]] = iter(answers)

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=0,
            )
            for address in next(self.answers)
        ]

    async def close(self) -> None:
        pass


async def test_resolver_passes_public_answers() -> None:
    resolver = GuardedResolver(FakeResolver(["93.184.216.34", "2606:2800:220:1::1"]))
    answers = await resolver.resolve("erp.example", 443)
    assert [a["host"] for a in answers] == ["93.184.216.34", "2606:2800:220:1::1"]


@pytest.mark.parametrize(
    "answer",
    [
        ["127.0.0.1"],
        ["93.184.216.34", "10.0.0.7"],
        ["10.0.0.7", "93.184.216.34"],
        ["93.184.216.34", "::1"],
        ["169.254.169.254"],
        ["::ffff:127.0.0.1"],
        ["fe80::1%eth0"],
        ["not-an-address"],
    ],
)
async def test_resolver_refuses_a_name_with_any_forbidden_answer(answer: list[str]) -> None:
    resolver = GuardedResolver(FakeResolver(answer))
    with pytest.raises(AddressForbidden, match=r"erp\.example resolves to"):
        await resolver.resolve("erp.example", 443)


async def test_resolver_refuses_a_rebound_name() -> None:
    resolver = GuardedResolver(FakeResolver(["93.184.216.34"], ["127.0.0.1"]))
    await resolver.resolve("erp.example", 443)
    with pytest.raises(AddressForbidden, match=r"127\.0\.0\.1, a loopback address"):
        await resolver.resolve("erp.example", 443)


async def test_resolver_allows_listed_networks() -> None:
    networks = (ipaddress.ip_network("10.0.0.0/8"),)
    resolver = GuardedResolver(FakeResolver(["10.0.0.7", "93.184.216.34"]), networks)
    assert len(await resolver.resolve("erp.internal", 443)) == 2


# Fetching: refusals before connecting ------------------------------------------------------------


async def test_url_outside_prefixes_is_never_requested(server: Server, fetcher: Any) -> None:
    fetch = fetcher(**local(server))
    for path in ("/admin", "/files-secret", "/files/%2e%2e/admin", "/files/../admin"):
        with pytest.raises(FetchRefused, match="not under any URL prefix"):
            await fetch.fetch(server.base + path)
    assert server.hits == []


async def test_loopback_literal_needs_a_listed_network(server: Server, fetcher: Any) -> None:
    url = server.prefix("/files/doc.pdf")
    with pytest.raises(FetchRefused, match=r"127\.0\.0\.1 is a loopback address"):
        await fetcher(allow=(server.prefix(),)).fetch(url)
    assert server.hits == []
    fetched = await fetcher(**local(server)).fetch(url)
    assert fetched == Fetched(PDF, "application/pdf", url)


async def test_hostname_resolving_to_loopback_is_refused(server: Server, fetcher: Any) -> None:
    url = f"http://localhost:{server.port}/files/doc.pdf"
    fetch = fetcher(allow=(f"http://localhost:{server.port}/files",))
    with pytest.raises(FetchRefused, match=r"localhost resolves to .*loopback"):
        await fetch.fetch(url)
    assert server.hits == []


async def test_hostname_in_listed_network_is_fetched(server: Server, fetcher: Any) -> None:
    # localhost may also resolve to ::1, and one forbidden answer refuses the whole name.
    networks = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
    fetch = fetcher(allow=(f"http://localhost:{server.port}/files",), allow_networks=networks)
    fetched = await fetch.fetch(f"http://localhost:{server.port}/files/doc.pdf")
    assert fetched.data == PDF
    assert server.hits == ["/files/doc.pdf"]


async def test_ipv4_mapped_loopback_is_refused(server: Server, fetcher: Any) -> None:
    base = f"http://[::ffff:127.0.0.1]:{server.port}"
    with pytest.raises(FetchRefused, match="loopback"):
        await fetcher(allow=(base + "/",)).fetch(base + "/files/doc.pdf")
    assert server.hits == []


async def test_metadata_address_is_refused_without_connecting(fetcher: Any) -> None:
    fetch = fetcher(allow=("http://169.254.169.254/",), timeout_s=30)
    async with elapsed_below(1):
        with pytest.raises(FetchRefused, match=r"169\.254\.169\.254 is a link-local address"):
            await fetch.fetch("http://169.254.169.254/latest/meta-data/")


async def test_user_info_is_refused_before_connecting(server: Server, fetcher: Any) -> None:
    url = f"http://user:pw@127.0.0.1:{server.port}/files/doc.pdf"
    with pytest.raises(FetchRefused, match="user info"):
        await fetcher(**local(server)).fetch(url)
    assert server.hits == []


# Fetching: redirects -----------------------------------------------------------------------------


def redirect_to(server: Server, target: str, status: int = 302) -> str:
    return server.prefix(f"/files/redirect?status={status}&to={quote(target, safe='')}")


@pytest.mark.parametrize(
    "target",
    [
        "/admin",
        "../files-secret",
        "{base}/admin",
        "http://localhost:{port}/files/doc.pdf",
        "http://[::ffff:127.0.0.1]:{port}/files/doc.pdf",
        "http://169.254.169.254/latest/meta-data/",
        "http://user:pw@127.0.0.1:{port}/files/doc.pdf",
        "https://127.0.0.1:{port}/files/doc.pdf",
        "file:///etc/passwd",
        "/files/%2e%2e/admin",
        "/files/..%2Fadmin",
    ],
)
async def test_redirect_outside_the_rules_is_refused(
    server: Server, fetcher: Any, target: str
) -> None:
    location = target.format(base=server.base, port=server.port)
    start = redirect_to(server, location)
    with pytest.raises(FetchRefused, match="redirected to") as caught:
        await fetcher(**local(server)).fetch(start)
    assert str(URL(start)) in str(caught.value)
    assert len(server.hits) == 1


async def test_redirect_to_another_port_is_refused(server: Server, fetcher: Any) -> None:
    async with serve() as other:
        with pytest.raises(FetchRefused, match="not under any URL prefix"):
            await fetcher(**local(server)).fetch(
                redirect_to(server, other.prefix("/files/doc.pdf"))
            )
        assert other.hits == []


async def test_redirect_to_an_allowed_prefix_on_a_forbidden_address(
    server: Server, fetcher: Any
) -> None:
    other = f"http://127.0.0.2:{server.port}/files"
    fetch = fetcher(allow=(server.prefix(), other), allow_networks=LOOPBACK)
    with pytest.raises(FetchRefused, match=r"127\.0\.0\.2 is a loopback address"):
        await fetch.fetch(redirect_to(server, other + "/doc.pdf"))


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_redirect_within_the_prefix_is_followed(
    server: Server, fetcher: Any, status: int
) -> None:
    fetched = await fetcher(**local(server)).fetch(redirect_to(server, "doc.pdf", status))
    assert fetched == Fetched(PDF, "application/pdf", server.prefix("/files/doc.pdf"))
    assert server.hits[-1] == "/files/doc.pdf"


async def test_absolute_redirect_records_the_final_url(server: Server, fetcher: Any) -> None:
    final = server.prefix("/files/plain")
    fetched = await fetcher(**local(server)).fetch(redirect_to(server, final + "#frag"))
    assert fetched.url == final
    assert fetched.data == "привет".encode()


async def test_redirect_chain_up_to_the_limit_is_followed(server: Server, fetcher: Any) -> None:
    fetched = await fetcher(**local(server)).fetch(server.prefix("/files/chain/3"))
    assert fetched.url == server.prefix("/files/chain/0")
    assert len(server.hits) == 4


async def test_redirect_chain_over_the_limit_is_refused(server: Server, fetcher: Any) -> None:
    with pytest.raises(FetchRefused, match="more than 3 redirects"):
        await fetcher(**local(server)).fetch(server.prefix("/files/chain/4"))
    assert len(server.hits) == 4


async def test_no_redirects_when_the_limit_is_zero(server: Server, fetcher: Any) -> None:
    with pytest.raises(FetchRefused, match="more than 0 redirects"):
        await fetcher(**local(server, max_redirects=0)).fetch(server.prefix("/files/chain/1"))


async def test_redirect_without_location_is_refused(fetcher: Any) -> None:
    answer = b"HTTP/1.1 302 Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    async with serve_raw(answer) as base:
        fetch = fetcher(allow=(base + "/",), allow_networks=LOOPBACK)
        with pytest.raises(FetchRefused, match="answered 302"):
            await fetch.fetch(base + "/doc")


# Fetching: size and time -------------------------------------------------------------------------


async def test_announced_size_over_the_limit_is_refused_unread(
    server: Server, fetcher: Any
) -> None:
    # The server sends 10 of the announced bytes and then waits: reading would time out.
    fetch = fetcher(**local(server, max_bytes=1000, timeout_s=10))
    async with elapsed_below(5):
        with pytest.raises(
            FetchRefused, match=rf"is {HUGE} bytes, over documents\.max_bytes \(1000"
        ):
            await fetch.fetch(server.prefix("/files/announced"))


async def test_chunked_body_over_the_limit_is_refused(server: Server, fetcher: Any) -> None:
    fetch = fetcher(**local(server, max_bytes=10_000))
    with pytest.raises(FetchRefused, match=r"over documents\.max_bytes \(10000"):
        await fetch.fetch(server.prefix(f"/files/chunked/{HUGE}"))


@pytest.mark.parametrize("kind", ["sized", "chunked"])
async def test_a_body_of_exactly_the_limit_is_fetched(
    server: Server, fetcher: Any, kind: str
) -> None:
    fetch = fetcher(**local(server, max_bytes=5000))
    assert len((await fetch.fetch(server.prefix(f"/files/{kind}/5000"))).data) == 5000
    with pytest.raises(FetchRefused, match=r"over documents\.max_bytes"):
        await fetch.fetch(server.prefix(f"/files/{kind}/5001"))


async def test_empty_body(server: Server, fetcher: Any) -> None:
    assert (await fetcher(**local(server)).fetch(server.prefix("/files/sized/0"))).data == b""


async def test_a_stalled_server_fails_within_the_timeout(server: Server, fetcher: Any) -> None:
    fetch = fetcher(**local(server, timeout_s=1))
    url = server.prefix("/files/stall")
    async with elapsed_below(4):
        with pytest.raises(FetchFailed, match="within 1 s") as caught:
            await fetch.fetch(url)
    assert url in str(caught.value)


async def test_the_timeout_covers_redirects_too(server: Server, fetcher: Any) -> None:
    fetch = fetcher(**local(server, timeout_s=1))
    async with elapsed_below(4):
        with pytest.raises(FetchFailed):
            await fetch.fetch(redirect_to(server, "stall"))


# Fetching: compression ---------------------------------------------------------------------------


async def test_gzip_is_decompressed(server: Server, fetcher: Any) -> None:
    fetched = await fetcher(**local(server)).fetch(server.prefix("/files/encoded/gzip?size=100"))
    assert fetched.data == b"\0" * 100


async def test_gzip_members_are_concatenated(server: Server, fetcher: Any) -> None:
    fetched = await fetcher(**local(server)).fetch(server.prefix("/files/encoded/two-members"))
    assert fetched.data == b"first,second"


async def test_a_gzip_bomb_stops_at_the_limit(server: Server, fetcher: Any) -> None:
    # About 10 kB on the wire, 10 MB unpacked.
    fetch = fetcher(**local(server, max_bytes=100_000))
    with pytest.raises(FetchRefused, match=r"over documents\.max_bytes \(100000"):
        await fetch.fetch(server.prefix(f"/files/encoded/gzip?size={HUGE}"))


@pytest.mark.parametrize(
    ("coding", "problem"),
    [("truncated", "cut short"), ("garbage", "does not decode"), ("br", "Content-Encoding")],
)
async def test_bad_or_unknown_encodings_are_refused(
    server: Server, fetcher: Any, coding: str, problem: str
) -> None:
    with pytest.raises(FetchRefused, match=problem):
        await fetcher(**local(server)).fetch(server.prefix(f"/files/encoded/{coding}"))


# Fetching: answers -------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [400, 401, 403, 404, 410, 451])
async def test_client_errors_are_refusals(server: Server, fetcher: Any, code: int) -> None:
    url = server.prefix(f"/files/status/{code}")
    with pytest.raises(FetchRefused, match=f"answered {code}") as caught:
        await fetcher(**local(server)).fetch(url)
    message = str(caught.value)
    assert url in message
    assert "error page" in message
    assert len(message) < len(url) + 300


@pytest.mark.parametrize("code", [408, 429, 500, 502, 503, 504])
async def test_retryable_answers_are_failures(server: Server, fetcher: Any, code: int) -> None:
    url = server.prefix(f"/files/status/{code}")
    with pytest.raises(FetchFailed, match=f"answered {code}") as caught:
        await fetcher(**local(server)).fetch(url)
    assert url in str(caught.value)
    assert len(str(caught.value)) < len(url) + 300


async def test_content_type_is_recorded(server: Server, fetcher: Any) -> None:
    fetch = fetcher(**local(server))
    assert (await fetch.fetch(server.prefix("/files/doc.pdf"))).content_type == "application/pdf"
    plain = await fetch.fetch(server.prefix("/files/plain"))
    assert plain.content_type == "text/plain; charset=utf-8"


async def test_missing_content_type_is_none(fetcher: Any) -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi"
    async with serve_raw(answer) as base:
        fetch = fetcher(allow=(base + "/",), allow_networks=LOOPBACK)
        assert await fetch.fetch(base + "/doc") == Fetched(b"hi", None, base + "/doc")


async def test_connection_refused_is_a_failure(fetcher: Any) -> None:
    base = f"http://127.0.0.1:{free_port()}"
    fetch = fetcher(allow=(base + "/",), allow_networks=LOOPBACK)
    with pytest.raises(FetchFailed, match=base):
        await fetch.fetch(base + "/doc")


async def test_unknown_host_is_a_failure(fetcher: Any) -> None:
    fetch = fetcher(allow=("http://no-such-host.invalid/",), timeout_s=5)
    with pytest.raises(FetchFailed, match=r"no-such-host\.invalid"):
        await fetch.fetch("http://no-such-host.invalid/doc.pdf")


async def test_truncated_body_is_a_failure(fetcher: Any) -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\nonly this"
    async with serve_raw(answer) as base:
        fetch = fetcher(allow=(base + "/",), allow_networks=LOOPBACK)
        with pytest.raises(FetchFailed, match=base):
            await fetch.fetch(base + "/doc")


# Fetching: session hygiene -----------------------------------------------------------------------


async def test_cookies_are_not_kept(server: Server, fetcher: Any) -> None:
    fetch = fetcher(**local(server))
    await fetch.fetch(server.prefix("/files/set-cookie"))
    assert (await fetch.fetch(server.prefix("/files/echo-cookie"))).data == b""


async def test_proxies_from_the_environment_are_ignored(
    server: Server, fetcher: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with serve() as proxy:
        for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
            monkeypatch.setenv(name, proxy.base)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        fetched = await fetcher(**local(server)).fetch(server.prefix("/files/doc.pdf"))
        assert fetched.data == PDF
        assert proxy.hits == []


def test_results_and_policies_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Fetched(b"", None, "http://x/").data = b"changed"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        FetchPolicy().allow = ("http://x/",)  # type: ignore[misc]


def test_constructing_a_fetcher_needs_no_loop() -> None:
    DocumentFetcher(FetchPolicy())


async def test_a_closed_fetcher_can_fetch_again(server: Server) -> None:
    fetch = DocumentFetcher(FetchPolicy(**local(server)))
    await fetch.close()
    assert (await fetch.fetch(server.prefix("/files/doc.pdf"))).data == PDF
    await fetch.close()
    assert (await fetch.fetch(server.prefix("/files/doc.pdf"))).data == PDF
    await fetch.close()


async def test_concurrent_fetches_share_the_session(server: Server, fetcher: Any) -> None:
    fetch = fetcher(**local(server))
    urls = [server.prefix("/files/doc.pdf"), server.prefix("/files/plain")] * 5
    results = await asyncio.gather(*(fetch.fetch(url) for url in urls))
    assert [r.url for r in results] == urls


# Configuration -----------------------------------------------------------------------------------


def test_no_section_means_nothing_allowed() -> None:
    assert policy_from_config(None, 1234) == FetchPolicy(max_bytes=1234)


def test_a_full_section() -> None:
    section = {
        "allow": ["https://erp.example/files/", "http://10.0.0.5:8080/docs"],
        "allow_networks": ["10.0.0.0/8", "fd00::/8", "192.168.1.7"],
        "timeout_seconds": 15,
        "max_redirects": 0,
    }
    assert policy_from_config(section, 1000) == FetchPolicy(
        allow=("https://erp.example/files/", "http://10.0.0.5:8080/docs"),
        allow_networks=(
            ipaddress.ip_network("10.0.0.0/8"),
            ipaddress.ip_network("fd00::/8"),
            ipaddress.ip_network("192.168.1.7/32"),
        ),
        max_bytes=1000,
        timeout_s=15.0,
        max_redirects=0,
    )


def test_empty_values_keep_the_defaults() -> None:
    section: dict[str, Any] = {"allow": None, "allow_networks": [], "timeout_seconds": None}
    assert policy_from_config(section, 10) == FetchPolicy(max_bytes=10)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            {"allow": ["https://erp.example/", "ftp://x"]},
            "documents.fetch.allow[1]: 'ftp://x' is not an http(s) URL prefix",
        ),
        ({"allow": ["erp.example/files"]}, "documents.fetch.allow[0]: 'erp.example/files' is"),
        ({"allow": "https://erp.example/"}, "documents.fetch.allow: must be a list"),
        ({"allow": [42]}, "documents.fetch.allow[0]: 42 is not"),
        ({"allow": ["https://u:p@erp.example/"]}, "documents.fetch.allow[0]: 'https://u:p@"),
        ({"allow": ["https://erp.example/?a=1"]}, "documents.fetch.allow[0]: 'https://erp"),
        ({"allow": ["https://erp.example/a%2Fb"]}, "documents.fetch.allow[0]: 'https://erp"),
        ({"allow": ["http://127.1/"]}, "documents.fetch.allow[0]: 'http://127.1/'"),
        (
            {"allow_networks": ["10.0.0.0/8", "10.0.0.1/8"]},
            "documents.fetch.allow_networks[1]: '10.0.0.1/8' is not a network in CIDR",
        ),
        ({"allow_networks": ["intranet"]}, "documents.fetch.allow_networks[0]: 'intranet'"),
        ({"allow_networks": "10.0.0.0/8"}, "documents.fetch.allow_networks: must be a list"),
        ({"timeout_seconds": -1}, "documents.fetch.timeout_seconds: must be a positive"),
        ({"timeout_seconds": 0}, "documents.fetch.timeout_seconds: must be a positive"),
        ({"timeout_seconds": float("inf")}, "documents.fetch.timeout_seconds: must be"),
        ({"timeout_seconds": "60"}, "documents.fetch.timeout_seconds: must be a number"),
        ({"timeout_seconds": True}, "documents.fetch.timeout_seconds: must be a number"),
        ({"max_redirects": -1}, "documents.fetch.max_redirects: must be a whole number"),
        ({"max_redirects": 1.5}, "documents.fetch.max_redirects: must be a whole number"),
        ({"allowed": ["https://erp.example/"]}, "documents.fetch.allowed: unknown key"),
        (["https://erp.example/"], "documents.fetch: must be a mapping"),
    ],
)
def test_config_errors_name_the_key(section: Any, message: str) -> None:
    with pytest.raises(ValueError, match=r"^documents\.fetch") as caught:
        policy_from_config(section, 1000)
    assert str(caught.value).startswith(message)


def test_config_max_bytes_must_be_positive() -> None:
    with pytest.raises(ValueError, match=r"^documents\.max_bytes: "):
        policy_from_config(None, 0)


@pytest.mark.parametrize(
    "fields",
    [
        {"allow": ("ftp://x",)},
        {"max_bytes": 0},
        {"timeout_s": 0},
        {"timeout_s": float("nan")},
        {"max_redirects": -1},
    ],
)
def test_an_invalid_policy_cannot_be_made(fields: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(fields))):
        FetchPolicy(**fields)
