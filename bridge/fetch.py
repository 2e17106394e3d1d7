"""Fetching documents from procurement-system URLs so that a URL cannot reach the inside."""

from __future__ import annotations

import asyncio
import ipaddress
import math
import re
import socket
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from .retry import Permanent, Transient

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

CONFIG_KEY = "documents.fetch"
_CONFIG_KEYS = frozenset({"allow", "allow_networks", "timeout_seconds", "max_redirects"})
_CHUNK = 64 * 1024
# A server that does not accept a connection within this is down, whatever the total allows.
_CONNECT_TIMEOUT_S = 5.0
_ERROR_SNIPPET = 200
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# 408 and 429 say "later", not "never".
_RETRYABLE_4XX = frozenset({408, 429})
# WHATWG URL: a host whose last label is a number is an IPv4 address in some notation.
_NUMERIC_LABEL = re.compile(r"0x[0-9a-f]*|[0-9]+", re.IGNORECASE)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_ENCODED_SEPARATOR = re.compile(r"%(2f|5c)", re.IGNORECASE)
_GZIP_WBITS = 16 + zlib.MAX_WBITS
# "deflate" is meant to be zlib-wrapped; +32 also accepts gzip, which some servers send.
_DEFLATE_WBITS = 32 + zlib.MAX_WBITS
_ACCEPT_ENCODING = "gzip, deflate"


class FetchRefused(Permanent):
    """The URL will not be fetched, or its answer will not change by retrying."""


class FetchFailed(Transient):
    """The fetch did not succeed this time (timeout, network, 5xx, 408, 429); worth retrying."""


@dataclass(frozen=True, slots=True)
class Fetched:
    data: bytes
    content_type: str | None
    # After redirects.
    url: str


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    """What may be fetched; the rules, enforced by check_url and DocumentFetcher:

    * Only absolute http(s) URLs without user info, and only under one of the URL prefixes in
      `allow` (none by default, so nothing is fetched). A URL is under a prefix when scheme,
      host (lowercased, IDNA) and port (default ports made explicit) are equal and its path
      equals the prefix's path or continues it after a `/`: `https://erp.example/files` admits
      `/files`, `/files/a.pdf` and `/files?x=1`, not `/files-secret`.
    * Dot segments are normalised, not refused: yarl removes `.` and `..` segments (percent-
      encoded ones too) per RFC 3986, and the prefix is matched against that normalised path,
      which is exactly the path sent, so `/files/../admin` is `/admin` and outside `/files`.
      An encoded slash or backslash (`%2F`, `%5C`) in the path is refused: a server decoding
      it would see segments the check did not.
    * Legacy numeric IPv4 hosts (`2130706433`, `127.1`, `0x7f.0.0.1`) are refused.
    * Every address connected to must be a public unicast address (`is_global`, neither
      multicast nor reserved; for IPv4-mapped, NAT64 and 6to4 IPv6 addresses the IPv4 address
      inside is judged) unless it lies in one of `allow_networks`. An IP-literal host is checked
      before connecting; a hostname at connection time, by GuardedResolver, so DNS rebinding
      cannot slip past. A name resolving to several addresses is refused whole when any one of
      them is forbidden, rather than trimmed: a name mixing inside and outside addresses is not
      one to trust, and refusing keeps the connection from depending on which answer wins.
    """

    allow: tuple[str, ...] = ()
    allow_networks: tuple[IPNetwork, ...] = ()
    max_bytes: int = 50 * 1024 * 1024
    timeout_s: float = 60.0
    max_redirects: int = 3

    def __post_init__(self) -> None:
        for i, prefix in enumerate(self.allow):
            try:
                _parse_prefix(prefix)
            except ValueError as e:
                raise ValueError(f"allow[{i}]: {e}") from None
        if self.max_bytes < 1:
            raise ValueError(f"max_bytes: must be positive, not {self.max_bytes}")
        if not (self.timeout_s > 0 and math.isfinite(self.timeout_s)):
            raise ValueError(f"timeout_s: must be a positive number, not {self.timeout_s}")
        if self.max_redirects < 0:
            raise ValueError(f"max_redirects: must not be negative, not {self.max_redirects}")


# Configuration ------------------------------------------------------------------------------


def policy_from_config(section: Mapping[str, Any] | None, max_bytes: int) -> FetchPolicy:
    """The policy of the `documents.fetch` config section; ValueError names the bad key."""
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
        raise ValueError(f"documents.max_bytes: must be a positive number, not {max_bytes!r}")
    if section is None:
        return FetchPolicy(max_bytes=max_bytes)
    if not isinstance(section, Mapping):
        raise ValueError(f"{CONFIG_KEY}: must be a mapping, not {section!r}")
    for key in section:
        if key not in _CONFIG_KEYS:
            raise ValueError(f"{CONFIG_KEY}.{key}: unknown key; known: {sorted(_CONFIG_KEYS)}")
    defaults = FetchPolicy()
    timeout = section.get("timeout_seconds")
    redirects = section.get("max_redirects")
    return FetchPolicy(
        allow=_config_prefixes(section.get("allow")),
        allow_networks=_config_networks(section.get("allow_networks")),
        max_bytes=max_bytes,
        timeout_s=defaults.timeout_s if timeout is None else _config_timeout(timeout),
        max_redirects=defaults.max_redirects if redirects is None else _config_count(redirects),
    )


def _config_list(value: Any, key: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise ValueError(f"{key}: must be a list, not {value!r}")
    return list(value)


def _config_prefixes(value: Any) -> tuple[str, ...]:
    key = f"{CONFIG_KEY}.allow"
    prefixes = []
    for i, item in enumerate(_config_list(value, key)):
        if not isinstance(item, str):
            raise ValueError(f"{key}[{i}]: {item!r} is not an http(s) URL prefix")
        try:
            _parse_prefix(item)
        except ValueError as e:
            raise ValueError(f"{key}[{i}]: {e}") from None
        prefixes.append(item)
    return tuple(prefixes)


def _config_networks(value: Any) -> tuple[IPNetwork, ...]:
    key = f"{CONFIG_KEY}.allow_networks"
    networks = []
    for i, item in enumerate(_config_list(value, key)):
        try:
            networks.append(ipaddress.ip_network(str(item).strip(), strict=True))
        except ValueError as e:
            raise ValueError(
                f"{key}[{i}]: {item!r} is not a network in CIDR notation ({e})"
            ) from None
    return tuple(networks)


def _config_timeout(value: Any) -> float:
    key = f"{CONFIG_KEY}.timeout_seconds"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{key}: must be a number of seconds, not {value!r}")
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{key}: must be a positive number of seconds, not {value!r}")
    return float(value)


def _config_count(value: Any) -> int:
    key = f"{CONFIG_KEY}.max_redirects"
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{key}: must be a whole number, 0 or more, not {value!r}")
    return value


# Static checks --------------------------------------------------------------------------------


class _Prefix(NamedTuple):
    scheme: str
    host: str
    port: int | None
    # Without the trailing slash; "" admits every path.
    path: str


@lru_cache(maxsize=256)
def _parse_prefix(text: str) -> _Prefix:
    """A configured URL prefix; ValueError says what is wrong with it."""
    try:
        url = URL(text.strip())
    except (ValueError, TypeError):
        raise ValueError(f"{text!r} is not an http(s) URL prefix") from None
    if url.scheme not in ("http", "https") or not url.raw_host:
        raise ValueError(f"{text!r} is not an http(s) URL prefix")
    if url.raw_user is not None or url.raw_password is not None:
        raise ValueError(f"{text!r} has user info; a prefix is scheme://host[:port][/path]")
    if url.raw_query_string or url.raw_fragment:
        raise ValueError(f"{text!r} has a query or fragment; a prefix ends with its path")
    problem = _host_problem(url) or _path_problem(url)
    if problem:
        raise ValueError(f"{text!r}: {problem}")
    return _Prefix(url.scheme, url.raw_host, url.port, url.raw_path.rstrip("/"))


def _under(url: URL, prefix: _Prefix) -> bool:
    if (url.scheme, url.raw_host, url.port) != prefix[:3]:
        return False
    path = url.raw_path
    return not prefix.path or path == prefix.path or path.startswith(prefix.path + "/")


def _host_problem(url: URL) -> str | None:
    host = url.raw_host or ""
    if ":" in host:
        try:
            ipaddress.IPv6Address(host.replace("%25", "%"))
        except ValueError:
            return f"host {host!r} is not an IPv6 address"
        return None
    last = host.rstrip(".").rsplit(".", 1)[-1]
    if _NUMERIC_LABEL.fullmatch(last) and not _is_canonical_ipv4(host):
        # Resolvers read these as IPv4 addresses; refusing them keeps what is checked and
        # what is connected to the same thing.
        return f"host {host!r} is not a canonical dotted-quad IPv4 address"
    return None


def _is_canonical_ipv4(host: str) -> bool:
    try:
        return str(ipaddress.IPv4Address(host)) == host
    except ValueError:
        return False


def _path_problem(url: URL) -> str | None:
    if _ENCODED_SEPARATOR.search(url.raw_path):
        return "the path has an encoded slash or backslash (%2F, %5C)"
    return None


def _literal_address(url: URL) -> IPAddress | None:
    host = url.raw_host or ""
    if ":" not in host and not _is_canonical_ipv4(host):
        return None
    return ipaddress.ip_address(host.replace("%25", "%"))


def _shown(url: URL) -> str:
    """The URL for messages and logs: never its password."""
    if url.raw_user is None and url.raw_password is None:
        return str(url)
    return str(url.with_user(None))


def _check(url: URL, policy: FetchPolicy) -> None:
    shown = _shown(url)
    if url.scheme not in ("http", "https") or not url.raw_host:
        raise FetchRefused(f"{shown}: not an absolute http(s) URL")
    if url.raw_user is not None or url.raw_password is not None:
        raise FetchRefused(f"{shown}: user info (user:password@) in the URL is not allowed")
    problem = _host_problem(url) or _path_problem(url)
    if problem:
        raise FetchRefused(f"{shown}: {problem}")
    if not any(_under(url, _parse_prefix(prefix)) for prefix in policy.allow):
        raise FetchRefused(f"{shown}: not under any URL prefix in {CONFIG_KEY}.allow")
    address = _literal_address(url)
    if address is not None:
        reason = address_refusal(address, policy.allow_networks)
        if reason:
            raise FetchRefused(f"{shown}: {_address_message(str(address), reason)}")


def _parse(url: str) -> URL:
    try:
        return URL(url).with_fragment(None)
    except (ValueError, TypeError):
        raise FetchRefused(f"{url[:_ERROR_SNIPPET]!r}: not a valid URL") from None


def check_url(url: str, policy: FetchPolicy) -> None:
    """Refuses (FetchRefused) a URL that can never be fetched under `policy`, without any I/O:
    scheme, user info, prefixes, and the address of an IP-literal host. Hostnames are
    resolved and checked only when fetching."""
    _check(_parse(url), policy)


# Addresses ------------------------------------------------------------------------------------


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address a connection to `address` really reaches, for the forms that carry one."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
    return address.sixtofour


def _kind(address: IPAddress) -> str:
    for kind in ("unspecified", "loopback", "link_local", "private", "multicast", "reserved"):
        if getattr(address, f"is_{kind}"):
            return kind.replace("_", "-")
    return "non-global"


def _public_refusal(address: IPAddress) -> str | None:
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_ipv4(address)
        if inner is not None:
            reason = _public_refusal(inner)
            return f"{reason} (it carries {inner})" if reason else None
    # is_global alone passes multicast and, in IPv6, IPv4-compatible forms such as ::127.0.0.1.
    if not address.is_global or address.is_multicast or address.is_reserved:
        return _kind(address)
    return None


def _listed(address: IPAddress, networks: tuple[IPNetwork, ...]) -> bool:
    candidates: list[IPAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_ipv4(address)
        if inner is not None:
            candidates.append(inner)
    return any(a in n for a in candidates for n in networks if a.version == n.version)


def address_refusal(address: IPAddress, networks: tuple[IPNetwork, ...] = ()) -> str | None:
    """Why connecting to `address` is forbidden (its kind, e.g. "loopback"), or None when it is
    a public unicast address or lies in one of the operator's `networks`."""
    if _listed(address, networks):
        return None
    return _public_refusal(address)


_ALLOW_HINT = f"list its network in {CONFIG_KEY}.allow_networks to allow it"


def _address_message(address: str, reason: str) -> str:
    return f"{address} is a {reason} address; {_ALLOW_HINT}"


class AddressForbidden(Exception):
    """A hostname resolved to a forbidden address (raised by GuardedResolver, turned into
    FetchRefused by the fetcher). Not an OSError, so aiohttp passes it through unwrapped."""

    def __init__(self, host: str, address: str, reason: str) -> None:
        super().__init__(f"{host} resolves to {address}, a {reason} address; {_ALLOW_HINT}")


class GuardedResolver(AbstractResolver):
    """Wraps a resolver; refuses a name when any address it resolves to is forbidden."""

    def __init__(self, inner: AbstractResolver, networks: tuple[IPNetwork, ...] = ()) -> None:
        self.inner = inner
        self.networks = networks

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self.inner.resolve(host, port, family)
        for result in results:
            try:
                address = ipaddress.ip_address(result["host"])
            except ValueError:
                raise AddressForbidden(host, result["host"], "non-IP") from None
            reason = address_refusal(address, self.networks)
            if reason:
                raise AddressForbidden(host, result["host"], reason)
        return results

    async def close(self) -> None:
        await self.inner.close()


# Bodies ---------------------------------------------------------------------------------------


class _Inflater:
    """gzip or deflate, decompressed no further than the room the caller has left."""

    def __init__(self, wbits: int) -> None:
        self._wbits = wbits
        self._z = zlib.decompressobj(wbits)

    def feed(self, chunk: bytes, room: int) -> bytes:
        # room >= 1 always: zlib takes a max_length of 0 as "unlimited".
        out = self._z.decompress(chunk, room)
        # Concatenated gzip members are one body (RFC 1952 §2.2).
        while self._z.eof and self._z.unused_data and len(out) < room:
            rest = self._z.unused_data
            self._z = zlib.decompressobj(self._wbits)
            out += self._z.decompress(rest, room - len(out))
        return out

    @property
    def complete(self) -> bool:
        return self._z.eof


def _inflater(encoding: str, url: URL) -> _Inflater | None:
    coding = encoding.strip().lower()
    if coding in ("", "identity"):
        return None
    if coding in ("gzip", "x-gzip"):
        return _Inflater(_GZIP_WBITS)
    if coding == "deflate":
        return _Inflater(_DEFLATE_WBITS)
    raise FetchRefused(f"GET {url}: unsupported Content-Encoding {encoding[:50]!r}")


def _too_large(url: URL, limit: int, size: int | None = None) -> FetchRefused:
    shown = f"is {size} bytes" if size is not None else "has more bytes"
    return FetchRefused(
        f"GET {url}: the document {shown}, over documents.max_bytes ({limit} bytes)"
    )


async def _read_body(resp: aiohttp.ClientResponse, url: URL, limit: int) -> bytes:
    """At most `limit` bytes of body, decompressed; FetchRefused as soon as there are more."""
    if resp.content_length is not None and resp.content_length > limit:
        raise _too_large(url, limit, resp.content_length)
    inflater = _inflater(resp.headers.get(aiohttp.hdrs.CONTENT_ENCODING, ""), url)
    data = bytearray()
    received = 0
    while True:
        # One byte past the limit is enough to refuse; compressed bytes count too.
        chunk = await resp.content.read(min(_CHUNK, limit + 1 - received))
        if not chunk:
            break
        received += len(chunk)
        data += _decode(inflater, chunk, limit + 1 - len(data), url)
        if len(data) > limit or received > limit:
            raise _too_large(url, limit)
    if inflater is not None and received and not inflater.complete:
        raise FetchRefused(f"GET {url}: the compressed body is cut short")
    return bytes(data)


def _decode(inflater: _Inflater | None, chunk: bytes, room: int, url: URL) -> bytes:
    if inflater is None:
        return chunk
    try:
        return inflater.feed(chunk, room)
    except zlib.error as e:
        raise FetchRefused(f"GET {url}: the compressed body does not decode ({e})") from e


async def _snippet(resp: aiohttp.ClientResponse) -> str:
    """The start of an error answer, for the message; never more than a couple hundred chars."""
    if resp.headers.get(aiohttp.hdrs.CONTENT_ENCODING, "identity").lower() != "identity":
        return ""
    try:
        raw = await resp.content.read(_ERROR_SNIPPET)
    except aiohttp.ClientError:
        return ""
    # Whatever the server wrote ends up in logs: one line, printable characters only.
    text = "".join(c if c.isprintable() else " " for c in raw.decode("utf-8", errors="replace"))
    text = " ".join(text.split())[:_ERROR_SNIPPET]
    return f": {text}" if text else ""


def _describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


# Fetching -------------------------------------------------------------------------------------


class DocumentFetcher:
    """Fetches documents under a FetchPolicy through one aiohttp session of its own.

    Redirects are followed by hand, at most `max_redirects`, each target checked like the
    first URL. One deadline (`timeout_s`) covers the whole fetch, redirects included;
    connecting has its own short one. At most `max_bytes` are returned and no more than one
    byte past that is ever buffered; a larger Content-Length is refused before reading.
    Bodies are asked for as gzip or deflate and decompressed here, aiohttp's decompression
    being off, in steps no larger than the room left, so a compression bomb stops at the
    limit; the compressed bytes count against the limit too, and other content codings are
    refused. No proxy from the environment, no cookies kept between fetches.
    """

    def __init__(self, policy: FetchPolicy) -> None:
        self.policy = policy
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        # Created in the running loop: the resolver and connector bind to it.
        if self._session is None or self._session.closed:
            resolver = GuardedResolver(DefaultResolver(), self.policy.allow_networks)
            connector = aiohttp.TCPConnector(resolver=resolver, use_dns_cache=False)
            self._session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,
                auto_decompress=False,
                # The total is fetch()'s own deadline, which spans the redirects.
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=min(_CONNECT_TIMEOUT_S, self.policy.timeout_s)
                ),
                headers={aiohttp.hdrs.ACCEPT_ENCODING: _ACCEPT_ENCODING},
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def fetch(self, url: str) -> Fetched:
        """The document at `url`, following permitted redirects; FetchRefused or FetchFailed."""
        start = _parse(url)
        _check(start, self.policy)
        try:
            async with asyncio.timeout(self.policy.timeout_s):
                return await self._follow(start)
        except TimeoutError as e:
            raise FetchFailed(
                f"GET {_shown(start)}: no complete answer within {self.policy.timeout_s:g} s"
            ) from e

    async def _follow(self, url: URL) -> Fetched:
        current = url
        for _ in range(self.policy.max_redirects + 1):
            answer = await self._get(current)
            if isinstance(answer, Fetched):
                return answer
            current = answer
        raise FetchRefused(
            f"GET {url}: more than {self.policy.max_redirects} redirects (the last to {current})"
        )

    async def _get(self, url: URL) -> Fetched | URL:
        """One request: the document, or the next URL to follow (already checked)."""
        try:
            async with self._http().get(url, allow_redirects=False) as resp:
                return await self._answer(resp, url)
        except AddressForbidden as e:
            raise FetchRefused(f"GET {url}: {e}") from e
        except aiohttp.InvalidURL as e:
            raise FetchRefused(f"GET {url}: not a valid URL ({e})") from e
        except TimeoutError as e:
            # aiohttp's connect timeout; the overall deadline is fetch()'s.
            raise FetchFailed(f"GET {url}: timed out connecting ({_describe(e)})") from e
        except (aiohttp.ClientError, OSError) as e:
            raise FetchFailed(f"GET {url}: {_describe(e)}") from e

    async def _answer(self, resp: aiohttp.ClientResponse, url: URL) -> Fetched | URL:
        status = resp.status
        if 200 <= status < 300:
            data = await _read_body(resp, url, self.policy.max_bytes)
            content_type = resp.headers.get(aiohttp.hdrs.CONTENT_TYPE, "").strip() or None
            return Fetched(data, content_type, str(url))
        if status in _REDIRECTS and aiohttp.hdrs.LOCATION in resp.headers:
            return self._redirect(url, resp.headers[aiohttp.hdrs.LOCATION])
        said = f"GET {url} answered {status} {resp.reason or ''}".rstrip()
        said += await _snippet(resp)
        if status >= 500 or status in _RETRYABLE_4XX:
            raise FetchFailed(said)
        # 4xx, and 3xx that cannot be followed: the same request gets the same answer.
        raise FetchRefused(said)

    def _redirect(self, url: URL, location: str) -> URL:
        try:
            target = url.join(URL(location)).with_fragment(None)
        except (ValueError, TypeError):
            raise FetchRefused(
                f"GET {url}: redirected to an invalid URL {location[:_ERROR_SNIPPET]!r}"
            ) from None
        try:
            _check(target, self.policy)
        except FetchRefused as e:
            raise FetchRefused(f"GET {url}: redirected to a URL not allowed: {e}") from None
        return target
