"""One webhook POST, pinned to the address that `ssrf.check_url` checked.

The caller must call `check_url` again right before each send and pass the fresh Destination:
a name that resolved to a public address at registration can resolve to a private one later
(DNS rebinding), and only the addresses checked at send time may be connected to. The URL keeps
its host name, so the Host header, TLS SNI and certificate verification all use the name.
Redirects are never followed: a 3xx is returned as a response like any other.
"""

import socket
import ssl
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import httpcore

from app.delivery.ssrf import DEFAULT_PORTS, Destination

DEFAULT_TIMEOUT = 15.0
DEFAULT_MAX_BODY = 4096
# The connection is this module's to describe; a caller's value could desynchronise framing.
_CONNECTION_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})
_MAX_REASON = 200
_NO_DELAY = (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


@dataclass(frozen=True)
class Response:
    """What the receiver answered: status, lower-cased headers, the start of the body."""

    status: int
    headers: dict[str, str]
    body: bytes
    duration_ms: float


class SendError(Exception):
    """The request got no HTTP response; `code` is timeout, connect, tls, network or protocol."""

    def __init__(self, reason: str, *, code: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


def post(
    destination: Destination,
    *,
    headers: Mapping[str, str],
    body: bytes,
    timeout: float = DEFAULT_TIMEOUT,
    max_body: int = DEFAULT_MAX_BODY,
    ssl_context: ssl.SSLContext | None = None,
) -> Response:
    """POST `body` to a Destination checked at send time; the whole attempt takes <= timeout s.

    Connects only to `destination.addresses[0]`. At most `max_body` bytes of the response body
    are read. Raises SendError when no response arrives in time or the connection fails.
    """
    if timeout <= 0 or max_body < 0 or not destination.addresses:
        raise ValueError("post needs a positive timeout, max_body >= 0 and a checked address")
    started = time.monotonic()
    backend = _PinnedBackend(
        address=destination.addresses[0], port=destination.port, deadline=started + timeout
    )
    pool = httpcore.ConnectionPool(
        ssl_context=ssl_context, max_connections=1, retries=0, network_backend=backend
    )
    timeouts = dict.fromkeys(("connect", "read", "write", "pool"), timeout)
    try:
        with (
            pool,
            pool.stream(
                "POST",
                _url(destination),
                headers=_request_headers(destination, headers),
                content=body,
                extensions={"timeout": timeouts},
            ) as response,
        ):
            received = _read_at_most(response.iter_stream(), max_body)
    except httpcore.TimeoutException:
        raise SendError(f"no response within {timeout:g} s", code="timeout") from None
    except (httpcore.NetworkError, httpcore.RemoteProtocolError) as error:
        raise _send_error(error) from None
    return Response(
        status=response.status,
        headers=_lower_case(response.headers),
        body=received,
        duration_ms=(time.monotonic() - started) * 1000,
    )


def _url(destination: Destination) -> httpcore.URL:
    return httpcore.URL(
        scheme=destination.scheme,
        host=destination.host,
        port=destination.port,
        target=destination.target,
    )


def _request_headers(destination: Destination, headers: Mapping[str, str]) -> list[tuple[str, str]]:
    own = [("Host", _host_header(destination))]
    return own + [(k, v) for k, v in headers.items() if k.lower() not in _CONNECTION_HEADERS]


def _host_header(destination: Destination) -> str:
    host = f"[{destination.host}]" if ":" in destination.host else destination.host
    if destination.port == DEFAULT_PORTS[destination.scheme]:
        return host
    return f"{host}:{destination.port}"


def _read_at_most(chunks: Iterable[bytes], limit: int) -> bytes:
    received = bytearray()
    for chunk in chunks:
        received += chunk[: limit - len(received)]
        if len(received) >= limit:
            break
    return bytes(received)


def _lower_case(headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
    merged: dict[str, str] = {}
    for raw_name, raw_value in headers:
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        merged[name] = f"{merged[name]}, {value}" if name in merged else value
    return merged


def _send_error(error: Exception) -> SendError:
    cause = error.__cause__ or error.__context__
    if isinstance(cause, ssl.SSLError):
        return SendError(_short(f"TLS failed: {cause}"), code="tls")
    if isinstance(error, httpcore.ConnectError):
        return SendError(_short(f"connection failed: {cause or error}"), code="connect")
    if isinstance(error, httpcore.RemoteProtocolError):
        return SendError(_short(f"invalid HTTP response: {error}"), code="protocol")
    return SendError(_short(f"connection lost: {cause or error}"), code="network")


def _short(reason: str) -> str:
    return reason if len(reason) <= _MAX_REASON else reason[: _MAX_REASON - 1] + "…"


def _remaining(timeout: float | None, deadline: float, expired: type[Exception]) -> float:
    """The per-operation timeout, cut so that the whole attempt ends by the deadline."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise expired("the attempt's deadline has passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    # httpcore's timeouts apply to each read; a server trickling one byte at a time would
    # otherwise hold the worker far beyond the attempt's timeout.
    def __init__(self, stream: httpcore.NetworkStream, deadline: float) -> None:
        self._stream = stream
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(
            max_bytes, _remaining(timeout, self._deadline, httpcore.ReadTimeout)
        )

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _remaining(timeout, self._deadline, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        bounded = _remaining(timeout, self._deadline, httpcore.ConnectTimeout)
        stream = self._stream.start_tls(ssl_context, server_hostname, bounded)
        return _DeadlineStream(stream, self._deadline)

    def get_extra_info(self, info: str) -> object:
        return self._stream.get_extra_info(info)


class _PinnedBackend(httpcore.NetworkBackend):
    def __init__(self, *, address: str, port: int, deadline: float) -> None:
        self._backend = httpcore.SyncBackend()
        self._address = address
        self._port = port
        self._deadline = deadline

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        # host and port come from the URL; the socket goes to the address that was checked.
        stream = self._backend.connect_tcp(
            self._address,
            self._port,
            timeout=_remaining(timeout, self._deadline, httpcore.ConnectTimeout),
            local_address=local_address,
            # Headers and body go out as separate writes: without TCP_NODELAY the body waits
            # for the receiver's delayed ACK (tens of milliseconds a delivery).
            socket_options=[*(socket_options or ()), _NO_DELAY],
        )
        return _DeadlineStream(stream, self._deadline)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("webhooks are never sent over Unix sockets")

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)
