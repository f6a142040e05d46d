"""Keep delivery tests on loopback: a socket guard and resolvers the test controls.

The guard checks the address before the real call, so a refused connection is never attempted.
Name resolution is guarded too: only numeric hosts and `localhost` may reach getaddrinfo (which
answers those without DNS); every other name must go through `resolver_for`.
"""

import socket
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from app.delivery.ssrf import Resolver

LOOPBACK = frozenset({"127.0.0.1", "::1"})


class NetGuard:
    """Records (and refuses) every attempt to connect or resolve outside loopback."""

    def __init__(self) -> None:
        self.refused: list[object] = []

    def check_address(self, address: object) -> None:
        """Raise AssertionError unless `address` is a (127.0.0.1 | ::1, port, ...) tuple."""
        if not (isinstance(address, tuple) and address and address[0] in LOOPBACK):
            self._refuse(address)

    def check_name(self, host: object) -> None:
        """Raise AssertionError unless getaddrinfo can answer `host` without a DNS query."""
        if host in LOOPBACK or host == "localhost":
            return
        if not isinstance(host, str) or not _is_numeric(host):
            self._refuse(host)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Wrap whatever socket functions are current with the checks."""
        monkeypatch.setattr(socket.socket, "connect", self._guarded_method(socket.socket.connect))
        monkeypatch.setattr(
            socket.socket, "connect_ex", self._guarded_method(socket.socket.connect_ex)
        )
        monkeypatch.setattr(socket, "create_connection", self._guarded_create_connection())
        monkeypatch.setattr(socket, "getaddrinfo", self._guarded_getaddrinfo())

    def _refuse(self, target: object) -> None:
        self.refused.append(target)
        raise AssertionError(f"a test tried to reach {target!r}; only loopback is allowed")

    def _guarded_method(self, real: Callable[..., Any]) -> Callable[..., Any]:
        def guarded(sock: socket.socket, address: object) -> Any:
            self.check_address(address)
            return real(sock, address)

        return guarded

    def _guarded_create_connection(self) -> Callable[..., socket.socket]:
        real = socket.create_connection

        def guarded(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
            self.check_address(address)
            return real(address, *args, **kwargs)

        return guarded

    def _guarded_getaddrinfo(self) -> Callable[..., Any]:
        real = socket.getaddrinfo

        def guarded(host: str | bytes | None, *args: Any, **kwargs: Any) -> Any:
            self.check_name(host)
            return real(host, *args, **kwargs)

        return guarded


def _is_numeric(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    except OSError:
        return False
    return True


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[NetGuard]:
    """Fail the test if it connects, or resolves a name, outside loopback (even if caught)."""
    guard = NetGuard()
    guard.install(monkeypatch)
    yield guard
    assert guard.refused == [], f"attempts outside loopback: {guard.refused}"


def resolver_for(names: Mapping[str, list[str]]) -> Resolver:
    """A resolver answering from `names`; an unknown name fails as DNS would (NXDOMAIN)."""

    def resolve(host: str, port: int) -> list[str]:
        if host not in names:
            raise socket.gaierror(socket.EAI_NONAME, f"{host} is not in the test's resolver")
        return list(names[host])

    return resolve
