"""Webhook URL checks against SSRF: only https to globally routable addresses.

Loopback is the one exception, and only when the development setting (`allow_http_loopback`)
is on: then a URL whose every address is loopback is accepted over http or https, so a CRM
stub on the developer's machine can be used. Every other non-global address is always refused.

`check_url` runs at registration and again at send time; the sender connects to the
`Destination.addresses` it returned, never to a fresh resolution of the name.
"""

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from app.errors import InvalidInput

Resolver = Callable[[str, int], list[str]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_URL_LENGTH = 2048
DEFAULT_PORTS = {"https": 443, "http": 80}
_SHARED = ipaddress.IPv4Network("100.64.0.0/10")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_LABEL_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")
_HEX_DIGITS = frozenset("0123456789abcdef")


class UnsafeDestination(InvalidInput):
    """A webhook URL that is malformed or could reach inside our network."""

    code = "unsafe_destination"

    @property
    def reason(self) -> str:
        """Why the URL was refused, in words a team can act on."""
        return self.message


class UnresolvableDestination(UnsafeDestination):
    """The URL's host name did not resolve (at send time this is usually transient)."""

    code = "unresolvable_destination"


@dataclass(frozen=True)
class Destination:
    """A checked webhook URL and the addresses the connection may go to."""

    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]

    @property
    def target(self) -> str:
        """The request target (path and query) sent on the request line."""
        parts = urlsplit(self.url)
        path = parts.path or "/"
        return f"{path}?{parts.query}" if parts.query else path


def system_resolver(host: str, port: int) -> list[str]:
    """Resolve a host name to its IPv4 and IPv6 addresses (in resolver order, without repeats)."""
    infos = socket.getaddrinfo(host, port, socket.AF_UNSPEC, socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def check_url(
    url: str, *, allow_http_loopback: bool, resolver: Resolver = system_resolver
) -> Destination:
    """Parse and resolve a webhook URL; raise UnsafeDestination unless every address is safe."""
    parts = _split(url)
    scheme = _scheme(parts, allow_http_loopback=allow_http_loopback)
    host = _host(parts)
    port = _port(parts, scheme)
    literal = _ip_literal(host)
    addresses = [literal] if literal else _resolve(host, port, resolver)
    subject = f"{literal} is" if literal else f"{host} resolves to"
    for address in addresses:
        refusal = _refusal(address, allow_loopback=allow_http_loopback)
        if refusal:
            raise UnsafeDestination(f"{subject} {refusal}")
    if scheme == "http" and not all(address.is_loopback for address in addresses):
        raise UnsafeDestination("http is only allowed to loopback; use https")
    return Destination(
        url=url,
        scheme=scheme,
        host=host,
        port=port,
        addresses=tuple(str(address) for address in addresses),
    )


def _split(url: str) -> SplitResult:
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeDestination(f"the URL is longer than {MAX_URL_LENGTH} characters")
    # urlsplit silently drops tabs and newlines and reads backslashes unlike browsers do;
    # refusing them leaves no room for two parsers to disagree about the host.
    if not url.isascii() or any(c <= " " or c in "\\\x7f" for c in url):
        raise UnsafeDestination(
            "the URL contains spaces, control characters, backslashes or non-ASCII characters "
            "(percent-encode them; write international host names in their xn-- form)"
        )
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - urlsplit validates brackets and ports lazily
    except ValueError as error:
        raise UnsafeDestination(f"the URL cannot be parsed: {error}") from None
    return parts


def _scheme(parts: SplitResult, *, allow_http_loopback: bool) -> str:
    if parts.scheme not in DEFAULT_PORTS:
        raise UnsafeDestination("the URL must start with https://")
    if parts.scheme == "http" and not allow_http_loopback:
        raise UnsafeDestination("http is not allowed; use https")
    return parts.scheme


def _host(parts: SplitResult) -> str:
    if "@" in parts.netloc:
        raise UnsafeDestination("the URL must not contain a user name or password")
    host = parts.hostname
    if not host:
        raise UnsafeDestination("the URL has no host")
    if ":" not in host and not _is_host_name(host) and not _looks_numeric(host):
        raise UnsafeDestination(f"{host!r} is not a valid host name")
    return host


def _is_host_name(host: str) -> bool:
    name = host.removesuffix(".")
    if not name or len(name) > 253:
        return False
    return all(_is_label(label) for label in name.split("."))


def _is_label(label: str) -> bool:
    return (
        0 < len(label) <= 63
        and set(label) <= _LABEL_CHARACTERS
        and not label.startswith("-")
        and not label.endswith("-")
    )


def _looks_numeric(host: str) -> bool:
    # As in the WHATWG URL standard: a host whose last label is a number is an IPv4 address,
    # so `2130706433`, `0x7f.1` and `127.1` must not be treated as names.
    last = host.removesuffix(".").rsplit(".", 1)[-1]
    hex_digits = last[2:] if last.startswith("0x") else None
    return last.isdigit() or (hex_digits is not None and set(hex_digits) <= _HEX_DIGITS)


def _port(parts: SplitResult, scheme: str) -> int:
    port = parts.port
    if port is None:
        return DEFAULT_PORTS[scheme]
    if port == 0:
        raise UnsafeDestination("port 0 is not a valid port")
    return port


def _ip_literal(host: str) -> IPAddress | None:
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host)
        except ValueError:
            raise UnsafeDestination(f"{host!r} is not a valid IPv6 address") from None
    if not _looks_numeric(host):
        return None
    try:
        return ipaddress.IPv4Address(host)
    except ValueError:
        raise UnsafeDestination(f"{host!r} is not an IPv4 address in dotted-decimal form") from None


def _resolve(host: str, port: int, resolver: Resolver) -> list[IPAddress]:
    try:
        found = resolver(host, port)
    except (OSError, UnicodeError):
        raise UnresolvableDestination(f"{host} could not be resolved") from None
    if not found:
        raise UnresolvableDestination(f"{host} resolves to no address")
    try:
        addresses = [ipaddress.ip_address(text) for text in found]
    except ValueError:
        raise UnsafeDestination(f"{host} resolves to something that is not an address") from None
    return list(dict.fromkeys(addresses))


def _refusal(address: IPAddress, *, allow_loopback: bool) -> str | None:
    """Why the address may not be connected to, or None when it may."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return "an IPv6 address with a zone index"
        for embedded in _embedded_ipv4(address):
            kind = _non_global_kind(embedded)
            if kind:
                return f"an IPv6 address embedding {kind}"
    if address.is_loopback and allow_loopback:
        return None
    return _non_global_kind(address)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses that an IPv6 address can route to: mapped, 6to4, Teredo and NAT64."""
    embedded = [address.ipv4_mapped, address.sixtofour, *(address.teredo or ())]
    if address in _NAT64:
        embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF))
    return [inner for inner in embedded if inner is not None]


def _non_global_kind(address: IPAddress) -> str | None:
    # Each property is tested on its own: is_global alone misses multicast on Python 3.11.
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address in _SHARED:
        return "a shared (carrier-grade NAT) address"
    if isinstance(address, ipaddress.IPv6Address) and address.is_site_local:
        return "a site-local address"
    if address.is_reserved:
        return "a reserved address"
    if address.is_private:
        return "a private address"
    if not address.is_global:
        return "an address that is not globally routable"
    return None
