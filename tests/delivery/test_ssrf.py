"""check_url: what may and may not be registered (and sent to) as a webhook URL."""

import socket

import pytest

from app.delivery.ssrf import (
    Destination,
    UnresolvableDestination,
    UnsafeDestination,
    check_url,
    system_resolver,
)
from tests.delivery.netguard import loopback_only, resolver_for

pytestmark = pytest.mark.usefixtures(loopback_only.__name__)

PUBLIC_V4 = "93.184.216.34"
PUBLIC_V6 = "2606:2800:220:1:248:1893:25c8:1946"
NAMES = {
    "crm.example": [PUBLIC_V4],
    "private.example": ["192.168.1.5"],
    "mixed.example": [PUBLIC_V4, "10.0.0.7"],
    "metadata.example": ["169.254.169.254"],
    "mapped.example": ["::ffff:10.0.0.1"],
    "localhost": ["127.0.0.1", "::1"],
    "half-loopback.example": ["127.0.0.1", PUBLIC_V4],
    "empty.example": [],
    "garbage.example": ["not-an-address"],
}
resolver = resolver_for(NAMES)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/", "http is not allowed"),
        ("https://127.0.0.1/", "loopback"),
        ("https://localhost/", "loopback"),
        ("https://10.0.0.1/", "private"),
        ("https://172.16.0.1/", "private"),
        ("https://192.168.0.1/", "private"),
        ("https://169.254.169.254/latest/meta-data", "link-local"),
        ("https://[::1]/", "loopback"),
        ("https://[::ffff:10.0.0.1]/", "embedding a private"),
        ("https://[::ffff:127.0.0.1]/", "embedding a loopback"),
        ("https://[::ffff:169.254.169.254]/", "embedding a link-local"),
        ("https://[64:ff9b::a9fe:a9fe]/", "embedding a link-local"),
        ("https://[2002:a00:1::]/", "embedding a private"),
        ("https://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/", "embedding a private"),
        ("https://[::10.0.0.1]/", "reserved"),
        ("https://[fe80::1]/", "link-local"),
        ("https://[fe80::1%25eth0]/", "zone index"),
        ("https://[fc00::1]/", "private"),
        ("https://[fec0::1]/", "site-local"),
        ("https://[ff02::1]/", "multicast"),
        ("https://[::]/", "unspecified"),
        ("https://0.0.0.0/", "unspecified"),
        ("https://224.0.0.1/", "multicast"),
        ("https://239.255.255.250/", "multicast"),
        ("https://240.0.0.1/", "reserved"),
        ("https://255.255.255.255/", "reserved"),
        ("https://100.64.0.1/", "shared"),
        ("https://192.0.2.1/", "private"),
        ("https://2130706433/", "dotted-decimal"),
        ("https://0x7f.1/", "dotted-decimal"),
        ("https://0x7f000001/", "dotted-decimal"),
        ("https://0177.0.0.1/", "dotted-decimal"),
        ("https://127.1/", "dotted-decimal"),
        ("https://10.0.0.1./", "dotted-decimal"),
        ("https://%31%32%37.0.0.1/", "dotted-decimal"),
        ("https://%63rm.example/", "not a valid host name"),
        ("https://[127.0.0.1]/", "cannot be parsed"),
        ("https://private.example/", "private.example resolves to a private"),
        ("https://mixed.example/", "mixed.example resolves to a private"),
        ("https://metadata.example/", "link-local"),
        ("https://mapped.example/", "embedding a private"),
        ("ftp://crm.example/", "https://"),
        ("file:///etc/passwd", "https://"),
        ("gopher://crm.example:70/", "https://"),
        ("javascript:alert(1)", "https://"),
        ("crm.example/hook", "https://"),
        ("https://user:secret@crm.example/", "user name or password"),
        ("https://user@crm.example/", "user name or password"),
        ("https://crm.example@10.0.0.1/", "user name or password"),
        ("https:///hook", "no host"),
        ("https://:443/hook", "no host"),
        ("https:crm.example", "no host"),
        ("https://crm.example:0/", "port 0"),
        ("https://crm.example:65536/", "cannot be parsed"),
        ("https://crm.example:-1/", "cannot be parsed"),
        ("https://crm.example:+443/", "cannot be parsed"),
        ("https://crm.example:https/", "cannot be parsed"),
        ("https://crm.example\\@10.0.0.1/", "backslashes"),
        ("https://crm.example\t.evil/", "control characters"),
        ("https://crm.example/\n", "control characters"),
        ("https://crm .example/", "spaces"),
        ("https://crм.example/", "non-ASCII"),
        ("https://crm_-.example-/", "not a valid host name"),
        ("https://" + "a" * 64 + ".example/", "not a valid host name"),
        ("https://crm.example/" + "a" * 2048, "longer than"),
    ],
)
def test_refused(url: str, reason: str) -> None:
    with pytest.raises(UnsafeDestination) as refused:
        check_url(url, allow_http_loopback=False, resolver=resolver)
    assert reason in refused.value.reason


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://crm.example/", "http is only allowed to loopback"),
        ("http://half-loopback.example/", "http is only allowed to loopback"),
        ("http://10.0.0.1/", "private"),
        ("https://0.0.0.0/", "unspecified"),
        ("https://[::ffff:127.0.0.1]/", "embedding a loopback"),
        ("http://private.example:8000/", "private"),
    ],
)
def test_refused_even_in_development(url: str, reason: str) -> None:
    with pytest.raises(UnsafeDestination) as refused:
        check_url(url, allow_http_loopback=True, resolver=resolver)
    assert reason in refused.value.reason


@pytest.mark.parametrize("host", ["unknown.example", "empty.example"])
def test_a_name_that_does_not_resolve_is_refused(host: str) -> None:
    with pytest.raises(UnresolvableDestination):
        check_url(f"https://{host}/", allow_http_loopback=False, resolver=resolver)


def test_a_resolver_answering_garbage_is_refused() -> None:
    with pytest.raises(UnsafeDestination, match="not an address"):
        check_url("https://garbage.example/", allow_http_loopback=False, resolver=resolver)


def test_refusal_is_a_422_with_a_stable_code() -> None:
    with pytest.raises(UnsafeDestination) as refused:
        check_url("https://10.0.0.1/", allow_http_loopback=False, resolver=resolver)
    assert (refused.value.status_code, refused.value.code) == (422, "unsafe_destination")


def test_a_resolved_name_is_refused_without_revealing_its_address() -> None:
    with pytest.raises(UnsafeDestination) as refused:
        check_url("https://private.example/", allow_http_loopback=False, resolver=resolver)
    assert "192.168.1.5" not in refused.value.reason


def test_plain_http_is_refused_before_any_resolution() -> None:
    asked: list[str] = []

    def recording(host: str, port: int) -> list[str]:
        asked.append(host)
        return [PUBLIC_V4]

    with pytest.raises(UnsafeDestination):
        check_url("http://crm.example/", allow_http_loopback=False, resolver=recording)
    assert asked == []


def test_a_public_name_is_accepted_with_its_checked_address() -> None:
    destination = check_url(
        "https://crm.example/hooks/in?team=7", allow_http_loopback=False, resolver=resolver
    )
    assert destination == Destination(
        url="https://crm.example/hooks/in?team=7",
        scheme="https",
        host="crm.example",
        port=443,
        addresses=(PUBLIC_V4,),
    )
    assert destination.target == "/hooks/in?team=7"


def test_every_address_of_both_families_is_kept_once() -> None:
    dual = resolver_for({"crm.example": [PUBLIC_V4, PUBLIC_V6, PUBLIC_V4]})
    destination = check_url("https://crm.example:8443", allow_http_loopback=False, resolver=dual)
    assert destination.addresses == (PUBLIC_V4, PUBLIC_V6)
    assert (destination.port, destination.target) == (8443, "/")


def test_scheme_and_host_are_normalised() -> None:
    absolute = resolver_for({"crm.example.": [PUBLIC_V4]})
    destination = check_url("HTTPS://CRM.Example./x", allow_http_loopback=False, resolver=absolute)
    assert (destination.scheme, destination.host) == ("https", "crm.example.")


@pytest.mark.parametrize(
    ("url", "addresses"),
    [
        (f"https://{PUBLIC_V4}/", (PUBLIC_V4,)),
        (f"https://[{PUBLIC_V6}]/", (PUBLIC_V6,)),
        ("https://[2606:2800:0220:0001:0248:1893:25c8:1946]/", (PUBLIC_V6,)),
    ],
)
def test_public_ip_literals_are_accepted(url: str, addresses: tuple[str, ...]) -> None:
    destination = check_url(url, allow_http_loopback=False, resolver=resolver)
    assert destination.addresses == addresses


@pytest.mark.parametrize(
    ("url", "addresses"),
    [
        ("http://127.0.0.1:8000/hook", ("127.0.0.1",)),
        ("http://127.0.0.2:8000/hook", ("127.0.0.2",)),
        ("http://[::1]:8000/hook", ("::1",)),
        ("https://[::1]/hook", ("::1",)),
        ("http://localhost:8000/hook", ("127.0.0.1", "::1")),
    ],
)
def test_loopback_is_accepted_in_development(url: str, addresses: tuple[str, ...]) -> None:
    destination = check_url(url, allow_http_loopback=True, resolver=resolver)
    assert destination.addresses == addresses


def test_the_send_time_check_catches_dns_rebinding() -> None:
    registered = check_url("https://crm.example/", allow_http_loopback=False, resolver=resolver)
    rebound = resolver_for({"crm.example": ["10.0.0.1"]})
    with pytest.raises(UnsafeDestination, match="private"):
        check_url(registered.url, allow_http_loopback=False, resolver=rebound)


def test_the_system_resolver_returns_each_address_once(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = [
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.1", 443)),
        (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("fd00::1", 443, 0, 0)),
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.1", 443)),
    ]
    monkeypatch.setattr(socket, "getaddrinfo", lambda *args, **kwargs: answers)
    assert system_resolver("crm.example", 443) == ["10.0.0.1", "fd00::1"]


def test_check_url_resolves_with_the_system_resolver_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[object] = []

    def getaddrinfo(host: object, *args: object) -> list[tuple[object, ...]]:
        asked.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.1", 443))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    with pytest.raises(UnsafeDestination, match="private"):
        check_url("https://crm.example/", allow_http_loopback=False)
    assert asked == ["crm.example"]


def test_the_system_resolver_answers_ip_literals_locally() -> None:
    assert system_resolver("127.0.0.1", 443) == ["127.0.0.1"]
