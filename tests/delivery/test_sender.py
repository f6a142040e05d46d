"""sender.post against real HTTP(S) servers on 127.0.0.1, under the loopback-only guard."""

import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from app.delivery.sender import SendError, post
from app.delivery.ssrf import Destination, check_url
from tests.delivery.netguard import NetGuard, loopback_only, resolver_for
from tests.server import free_port

pytestmark = pytest.mark.usefixtures(loopback_only.__name__)

BIG_BODY = b"x" * 100_000


@dataclass(frozen=True)
class Seen:
    path: str
    headers: dict[str, str]
    body: bytes


class Crm(ThreadingHTTPServer):
    """A CRM stand-in: the path picks the answer; every request it reads is kept in `seen`."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.seen: list[Seen] = []
        self.release = threading.Event()
        self.server_names: list[str | None] = []

    @property
    def port(self) -> int:
        return int(self.server_address[1])


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Crm

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        headers = {name.lower(): value for name, value in self.headers.items()}
        self.server.seen.append(Seen(self.path, headers, body))
        answer = getattr(self, "_" + self.path.strip("/").split("?")[0], self._accepted)
        answer()

    def _accepted(self) -> None:
        self._answer(200, b"accepted", {"X-Crm": "yes", "Retry-After": "30"})

    def _big(self) -> None:
        self._answer(200, BIG_BODY)

    def _error(self) -> None:
        self._answer(500, b"boom", {"Retry-After": "120"})

    def _redirect(self) -> None:
        self._answer(302, b"", {"Location": "http://169.254.169.254/latest/meta-data"})

    def _slow(self) -> None:
        self.server.release.wait(10)
        self._answer(200, b"late")

    def _drip(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "100")
        self.end_headers()
        for _ in range(100):
            if self.server.release.wait(0.05):
                return
            self.wfile.write(b".")
            self.wfile.flush()

    def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _serve(crm: Crm) -> Iterator[Crm]:
    thread = threading.Thread(target=crm.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield crm
    finally:
        crm.release.set()
        crm.shutdown()
        crm.server_close()
        thread.join(5)


@pytest.fixture
def crm() -> Iterator[Crm]:
    yield from _serve(Crm())


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for crm.test (and its key), made with the openssl CLI."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=crm.test",
            "-addext",
            "subjectAltName=DNS:crm.test",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return cert, key


@pytest.fixture
def tls_crm(certificate: tuple[Path, Path]) -> Iterator[Crm]:
    crm = Crm()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    context.sni_callback = lambda _sock, name, _context: crm.server_names.append(name)
    crm.socket = context.wrap_socket(crm.socket, server_side=True)
    yield from _serve(crm)


def _local(url: str) -> Destination:
    return check_url(url, allow_http_loopback=True, resolver=resolver_for({}))


def _pinned(url: str) -> Destination:
    """A destination whose name exists only in the test's resolver, pinned to 127.0.0.1."""
    names = {"crm.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]}
    return check_url(url, allow_http_loopback=True, resolver=resolver_for(names))


def test_a_200_is_recorded_with_headers_and_body(crm: Crm) -> None:
    destination = _local(f"http://127.0.0.1:{crm.port}/hook?team=7")
    response = post(
        destination,
        headers={"Content-Type": "application/json", "webhook-id": "evt_1"},
        body=b'{"event": "ticket.created"}',
    )
    assert (response.status, response.body) == (200, b"accepted")
    assert response.headers["x-crm"] == "yes"
    assert response.headers["retry-after"] == "30"
    assert 0 < response.duration_ms < 5000
    [seen] = crm.seen
    assert (seen.path, seen.body) == ("/hook?team=7", b'{"event": "ticket.created"}')
    assert seen.headers["webhook-id"] == "evt_1"
    assert seen.headers["content-length"] == str(len(seen.body))


def test_the_body_is_cut_at_max_body(crm: Crm) -> None:
    response = post(_local(f"http://127.0.0.1:{crm.port}/big"), headers={}, body=b"", max_body=10)
    assert (response.status, response.body) == (200, BIG_BODY[:10])


def test_the_body_is_kept_whole_when_it_fits(crm: Crm) -> None:
    response = post(_local(f"http://127.0.0.1:{crm.port}/error"), headers={}, body=b"")
    assert (response.status, response.body) == (500, b"boom")
    assert response.headers["retry-after"] == "120"


def test_a_redirect_is_recorded_and_not_followed(crm: Crm, loopback_only: NetGuard) -> None:
    response = post(_local(f"http://127.0.0.1:{crm.port}/redirect"), headers={}, body=b"{}")
    assert response.status == 302
    assert response.headers["location"] == "http://169.254.169.254/latest/meta-data"
    assert [seen.path for seen in crm.seen] == ["/redirect"]
    assert loopback_only.refused == []


def test_a_slow_server_times_out_on_time(crm: Crm) -> None:
    started = time.monotonic()
    with pytest.raises(SendError) as failure:
        post(_local(f"http://127.0.0.1:{crm.port}/slow"), headers={}, body=b"", timeout=0.5)
    assert failure.value.code == "timeout"
    assert time.monotonic() - started < 2


def test_the_timeout_bounds_the_whole_attempt_not_each_read(crm: Crm) -> None:
    # One byte every 50 ms: no single read waits long, but the whole body takes 5 s.
    started = time.monotonic()
    with pytest.raises(SendError) as failure:
        post(_local(f"http://127.0.0.1:{crm.port}/drip"), headers={}, body=b"", timeout=0.5)
    assert failure.value.code == "timeout"
    assert time.monotonic() - started < 1.5


def test_a_refused_connection_is_a_send_error() -> None:
    destination = _local(f"http://127.0.0.1:{free_port()}/hook")
    with pytest.raises(SendError) as failure:
        post(destination, headers={}, body=b"{}", timeout=2)
    assert failure.value.code == "connect"
    assert failure.value.reason


def test_the_connection_is_pinned_and_the_host_header_keeps_the_name(crm: Crm) -> None:
    destination = _pinned(f"http://crm.test:{crm.port}/hook")
    response = post(destination, headers={"Host": "intranet.local"}, body=b"{}")
    assert response.status == 200
    [seen] = crm.seen
    assert seen.headers["host"] == f"crm.test:{crm.port}"
    assert seen.path == "/hook"


def test_tls_verifies_the_name_on_the_pinned_connection(
    tls_crm: Crm, certificate: tuple[Path, Path]
) -> None:
    trusted = ssl.create_default_context(cafile=str(certificate[0]))
    destination = _pinned(f"https://crm.test:{tls_crm.port}/hook")
    response = post(destination, headers={}, body=b"{}", ssl_context=trusted)
    assert response.status == 200
    assert tls_crm.server_names == ["crm.test"]
    assert tls_crm.seen[0].headers["host"] == f"crm.test:{tls_crm.port}"


def test_a_certificate_for_another_name_is_refused(
    tls_crm: Crm, certificate: tuple[Path, Path]
) -> None:
    trusted = ssl.create_default_context(cafile=str(certificate[0]))
    destination = _pinned(f"https://other.test:{tls_crm.port}/hook")
    with pytest.raises(SendError) as failure:
        post(destination, headers={}, body=b"{}", ssl_context=trusted)
    assert failure.value.code == "tls"
    assert tls_crm.seen == []


def test_an_untrusted_certificate_is_refused(tls_crm: Crm) -> None:
    destination = _pinned(f"https://crm.test:{tls_crm.port}/hook")
    with pytest.raises(SendError) as failure:
        post(destination, headers={}, body=b"{}", timeout=5)
    assert failure.value.code == "tls"


def test_the_guard_refuses_before_the_real_call(monkeypatch: pytest.MonkeyPatch) -> None:
    # The real socket calls are replaced first, so even a broken guard could not reach out.
    reached: list[object] = []
    monkeypatch.setattr(socket.socket, "connect", lambda _sock, address: reached.append(address))
    monkeypatch.setattr(socket.socket, "connect_ex", lambda _sock, address: reached.append(address))
    guard = NetGuard()
    guard.install(monkeypatch)
    with socket.socket() as sock:
        with pytest.raises(AssertionError):
            sock.connect(("192.0.2.1", 443))
        with pytest.raises(AssertionError):
            sock.connect_ex(("192.0.2.1", 443))
        with pytest.raises(AssertionError):
            socket.create_connection(("192.0.2.1", 443))
        with pytest.raises(AssertionError):
            socket.getaddrinfo("crm.example", 443)
        sock.connect(("127.0.0.1", 9))
    assert reached == [("127.0.0.1", 9)]
    assert guard.refused == [("192.0.2.1", 443)] * 3 + ["crm.example"]
