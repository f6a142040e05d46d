"""A stand-in for X's API v2 on 127.0.0.1, for what the recordings do not cover: paging across
pages, 429s with their reset header, failures on `POST /2/tweets`, user lookups, and a filtered
stream that drops and reconnects. It speaks the shapes of the recorded exchanges."""

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

BEARER = "test-bearer-token"


@dataclass(frozen=True)
class Failure:
    """An answer other than the normal one, for the next request whose path starts with
    `path` (and method is `method`)."""

    path: str
    status: int
    body: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    method: str = "GET"
    when: dict[str, str] = field(default_factory=dict)  # only requests with these parameters

    def matches(self, seen: "Seen") -> bool:
        return (
            seen.method == self.method
            and seen.path.startswith(self.path)
            and all(seen.params.get(k) == v for k, v in self.when.items())
        )


@dataclass
class Seen:
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    body: Any = None


def snowflake(at: datetime, sequence: int = 0) -> int:
    """An X post id made at `at` (milliseconds since X's epoch in the high bits)."""
    return ((int(at.timestamp() * 1000) - 1_288_834_974_657) << 22) + sequence


def post(post_id: int, text: str, author: str, **extra: Any) -> dict[str, Any]:
    return {"id": str(post_id), "text": text, "author_id": author, "lang": "en", **extra}


def user(user_id: str, username: str, followers: int = 10) -> dict[str, Any]:
    return {
        "id": user_id,
        "username": username,
        "name": username.title(),
        "verified": False,
        "public_metrics": {"followers_count": followers},
    }


class FakeX:
    def __init__(self) -> None:
        self.users: dict[str, dict[str, Any]] = {}
        self.me: dict[str, Any] = {"id": "900", "username": "TransNordHelp", "name": "Help"}
        self.mentions: dict[str, list[dict[str, Any]]] = {}  # user id -> posts
        self.search: list[dict[str, Any]] = []
        self.page_size = 2
        self.failures: list[Failure] = []
        self.seen: list[Seen] = []
        self.tweets: list[dict[str, Any]] = []  # created by POST /2/tweets
        self.answer_created_after = 0.0  # seconds: X takes the post but answers late
        self.rules: list[dict[str, str]] = []
        # Each stream connection sends the next list of messages; then the connection closes,
        # except the last one, which stays open (keep-alives) until the server stops.
        self.stream_connections: list[list[dict[str, Any]]] = []
        self.stream_opened = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.url = ""
        self._next_id = 2_000_000

    def fail(self, *failures: Failure) -> None:
        with self.lock:
            self.failures.extend(failures)

    def requests_to(self, prefix: str) -> list[Seen]:
        return [s for s in self.seen if s.path.startswith(prefix)]

    # --- what the handler calls ------------------------------------------------------------

    def answer(self, seen: Seen) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self.lock:
            self.seen.append(seen)
            for failure in self.failures:
                if failure.matches(seen):
                    self.failures.remove(failure)
                    return failure.status, failure.body, failure.headers
            return self._normal(seen)

    def _normal(self, seen: Seen) -> tuple[int, dict[str, Any], dict[str, str]]:
        auth = seen.headers.get("authorization", "")
        parts = seen.path.strip("/").split("/")
        if seen.method == "POST" and seen.path == "/2/tweets":
            if not auth.startswith("OAuth "):
                return 401, {"title": "Unauthorized", "detail": "Unauthorized"}, {}
            return self._create(seen.body)
        if seen.path == "/2/users/me":
            if not auth.startswith("OAuth "):
                return 403, {"title": "Forbidden", "detail": "user context needed"}, {}
            return 200, {"data": self.me}, {}
        if seen.path == f"/2/users/{self.me['id']}/tweets" and auth.startswith("OAuth "):
            return 200, {"data": [self._as_post(t) for t in reversed(self.tweets)]}, {}
        if auth != f"Bearer {BEARER}":
            return 401, {"title": "Unauthorized", "detail": "Unauthorized", "status": 401}, {}
        if seen.path == "/2/users/by":
            names = seen.params.get("usernames", "").lower().split(",")
            found = [u for u in self.users.values() if u["username"].lower() in names]
            return 200, {"data": found} if found else {}, {}
        if len(parts) == 4 and parts[:2] == ["2", "users"] and parts[3] == "mentions":
            return (
                200,
                self._page(self.mentions.get(parts[2], []), seen.params, "pagination_token"),
                {},
            )
        if seen.path == "/2/tweets/search/recent":
            return 200, self._page(self.search, seen.params, "next_token"), {}
        if seen.path == "/2/tweets/search/stream/rules":
            return self._rules(seen)
        return 404, {"title": "Not Found Error"}, {}

    def _page(
        self, posts: list[dict[str, Any]], params: dict[str, str], token_name: str
    ) -> dict[str, Any]:
        """Newest first, after `since_id`; a page token points at the next post to give."""
        since = int(params.get("since_id", "0"))
        newest_first = sorted(posts, key=lambda p: int(p["id"]), reverse=True)
        rest = [p for p in newest_first if int(p["id"]) > since]
        if token := params.get(token_name):
            rest = [p for p in rest if int(p["id"]) <= int(token.removeprefix("t"))]
        page, after = rest[: self.page_size], rest[self.page_size :]
        if not page:
            return {"meta": {"result_count": 0}}
        authors = {p["author_id"] for p in page}
        meta = {
            "result_count": len(page),
            "newest_id": page[0]["id"],
            "oldest_id": page[-1]["id"],
            **({"next_token": f"t{after[0]['id']}"} if after else {}),
        }
        users = [self.users[a] for a in sorted(authors) if a in self.users]
        return {"data": page, "includes": {"users": users}, "meta": meta}

    def _create(self, body: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
        if any(t["text"] == body.get("text") for t in self.tweets):
            detail = "You are not allowed to create a Tweet with duplicate content."
            return (
                403,
                {"detail": detail, "type": "about:blank", "title": "Forbidden", "status": 403},
                {},
            )
        self._next_id += 1
        self.tweets.append({**body, "id": str(self._next_id)})
        return 201, {"data": {"id": str(self._next_id), "text": body.get("text")}}, {}

    @staticmethod
    def _as_post(tweet: dict[str, Any]) -> dict[str, Any]:
        """A created post as X shows it: its text HTML-escaped, what it replies to referenced."""
        replied = (tweet.get("reply") or {}).get("in_reply_to_tweet_id")
        text = str(tweet["text"]).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        references = [{"type": "replied_to", "id": replied}] if replied else []
        return {"id": tweet["id"], "text": text, "referenced_tweets": references}

    def _rules(self, seen: Seen) -> tuple[int, dict[str, Any], dict[str, str]]:
        if seen.method == "GET":
            return 200, {"data": self.rules} if self.rules else {"meta": {"result_count": 0}}, {}
        body = seen.body or {}
        if "add" in body:
            for rule in body["add"]:
                self._next_id += 1
                self.rules.append({"id": str(self._next_id), **rule})
        if "delete" in body:
            gone = set(body["delete"]["ids"])
            self.rules = [r for r in self.rules if r["id"] not in gone]
        return 200, {"meta": {"summary": {}}}, {}

    def next_stream(self) -> tuple[list[dict[str, Any]], bool]:
        """The messages of the next connection, and whether it stays open."""
        with self.lock:
            index = self.stream_opened
            self.stream_opened += 1
            if index < len(self.stream_connections):
                last = index == len(self.stream_connections) - 1
                return self.stream_connections[index], last
            return [], True


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        fake = self.server.fake
        url = urlsplit(self.path)
        params = {k: v[-1] for k, v in parse_qs(url.query).items()}
        length = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        headers = {k.lower(): v for k, v in self.headers.items()}
        seen = Seen(method, url.path, params, headers, body)
        if url.path == "/2/tweets/search/stream":
            fake.seen.append(seen)
            self._stream(fake)
            return
        status, document, extra = fake.answer(seen)
        late = status == 201 and fake.answer_created_after > 0
        if late:  # cut short when the stand-in stops: no thread outlives its test
            fake.stopping.wait(fake.answer_created_after)
        payload = json.dumps(document).encode()
        try:
            self.send_response(status)
            self.send_header("content-type", "application/json; charset=utf-8")
            self.send_header("content-length", str(len(payload)))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            if not late:
                raise
            # The client stopped waiting (its timeout): a late answer is lost, as on X.

    def _stream(self, fake: FakeX) -> None:
        messages, stays_open = fake.next_stream()
        self.send_response(200)
        self.send_header("content-type", "application/json; charset=utf-8")
        self.end_headers()
        for message in messages:
            self.wfile.write(json.dumps(message).encode() + b"\r\n")
            self.wfile.flush()
        while stays_open and not fake.stopping.is_set():
            self.wfile.write(b"\r\n")  # X's keep-alive
            self.wfile.flush()
            time.sleep(0.2)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeX) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake


@contextmanager
def running_fake_x() -> Iterator[FakeX]:
    fake = FakeX()
    server = _Server(fake)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    # Polled every 0.05 s for the stop signal: the default 0.5 s was paid by every test's teardown.
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        fake.stopping.set()
        server.shutdown()
        server.server_close()
