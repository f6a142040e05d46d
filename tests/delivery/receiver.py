"""A CRM stand-in on 127.0.0.1 that fails on purpose and counts what it gets."""

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Behaviour:
    """How to answer one request: a status, headers, a delay, or a dropped connection."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False
    body: bytes = b"ok"


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """Answers with the scripted behaviours in order, then with `default`."""

    def __init__(self, default: Behaviour | None = None) -> None:
        self.default = default or Behaviour()
        self.script: list[Behaviour] = []
        self.received: list[Received] = []
        self.started = 0  # requests begun, answered or not
        self.lock = threading.Lock()
        self.url = ""

    def next_behaviour(self) -> Behaviour:
        with self.lock:
            return self.script.pop(0) if self.script else self.default

    def ids(self) -> list[str]:
        with self.lock:
            return [r.headers["webhook-id"] for r in self.received]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # Answer in one write, at once, as a production server would.
        wbufsize = 65_536
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            with receiver.lock:
                receiver.started += 1
            behaviour = receiver.next_behaviour()
            time.sleep(behaviour.delay)
            if behaviour.drop:
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            with receiver.lock:
                received = {k.lower(): v for k, v in self.headers.items()}
                receiver.received.append(Received(self.path, received, body))
            self.send_response(behaviour.status)
            for name, value in behaviour.headers.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(behaviour.body)))
            self.end_headers()
            self.wfile.write(behaviour.body)

        def log_message(self, *args: object) -> None:
            return

    return Handler


class _Server(ThreadingHTTPServer):
    # The default backlog of 5 drops connections when workers post concurrently, and each drop
    # costs the client a second before it retries: it would measure the receiver, not us.
    request_queue_size = 512


@contextmanager
def running_receiver(default: Behaviour | None = None) -> Iterator[Receiver]:
    receiver = Receiver(default)
    server = _Server(("127.0.0.1", 0), _handler(receiver))
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    # Polled every 0.05 s for the stop signal: the default 0.5 s was paid by every test's teardown.
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
