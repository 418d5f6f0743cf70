"""A small threaded HTTP server for fake providers, with fault switches and a request log.

Each fake provider subclasses :class:`FakeServer` and registers routes with :meth:`route`.
Tests flip switches between calls:

- ``server.latency = 0.2``: every answer is delayed by that many seconds.
- ``server.fail(status, body, headers=..., times=n, path=...)``: the next ``n`` matching
  requests get that answer instead (``server.rate_limit(retry_after=...)`` and
  ``server.server_error()`` are shorthands).
- ``server.hang(times=n)``: the next ``n`` requests never answer (until the server stops or
  ``hang_seconds`` pass), so clients time out.
- ``server.malformed(times=n)``: the next ``n`` requests get ``200`` with a body that is not
  the JSON the provider would send.
- ``server.drop(times=n)``: the connection is closed without an answer.
- ``server.hang_after_accept(...)`` / ``server.drop_after_accept(...)``: the request is
  handled (a submission creates its job) and then the answer is lost: never sent (the client
  times out) or the connection is closed. This is the failure that must never create a
  second paid job.

``server.requests`` records every request (method, path, query, headers, body) so tests can
assert auth headers and bodies; ``server.handled`` those that reached a route (were acted on:
a submission there is a job, paid for).
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    """One recorded request. Header names are lower-cased."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    match: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body or b"null")

    def param(self, name: str) -> str | None:
        """The first value of query parameter ``name``."""
        values = self.query.get(name)
        return values[0] if values else None


@dataclass
class Response:
    """An answer: status, body (bytes, or anything JSON-serialisable) and headers."""

    status: int = 200
    body: Any = b""
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> tuple[bytes, dict[str, str]]:
        """The body as bytes and the headers, with a JSON content type for JSON bodies."""
        headers = dict(self.headers)
        if isinstance(self.body, bytes | bytearray):
            return bytes(self.body), headers
        headers.setdefault("Content-Type", "application/json")
        return json.dumps(self.body).encode(), headers


@dataclass
class Fault:
    """An injected misbehaviour for the next ``times`` matching requests."""

    kind: str
    times: int
    path: str | None = None
    method: str | None = None
    response: Response | None = None

    def matches(self, request: Request) -> bool:
        """True when this fault applies to ``request``."""
        if self.method and request.method != self.method:
            return False
        return self.path is None or re.search(self.path, request.path) is not None


Handler = Callable[[Request], Response]


class FakeServer:
    """A loopback HTTP server on a free port, serving in a background thread."""

    name = "fake"

    def __init__(self, *, api_key: str = "test-key") -> None:
        self.api_key = api_key
        self.latency = 0.0
        self.hang_seconds = 10.0
        self.requests: list[Request] = []
        self.handled: list[Request] = []
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.media_tokens: set[str] = set()
        self.host = "127.0.0.1"

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        """Answer ``method`` requests whose path fully matches ``pattern`` with ``handler``."""
        self._routes.append((method, re.compile(pattern), handler))

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeServer:
        """Bind a free port on ``host`` (loopback unless set) and serve in a daemon thread."""
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _serve(self) -> None:
                server._serve(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve

        httpd = ThreadingHTTPServer((self.host, 0), _Handler, bind_and_activate=False)
        httpd.daemon_threads = True
        httpd.request_queue_size = 4096
        httpd.server_bind()
        httpd.server_activate()
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release hanging requests."""
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget recorded requests and pending faults."""
        with self._lock:
            self.requests.clear()
            self.handled.clear()
            self._faults.clear()

    def inject(self, fault: Fault) -> None:
        """Queue a :class:`Fault`."""
        with self._lock:
            self._faults.append(fault)

    def fail(
        self,
        status: int,
        body: Any = b"",
        *,
        headers: dict[str, str] | None = None,
        times: int = 1,
        path: str | None = None,
        method: str | None = None,
    ) -> None:
        """Answer the next ``times`` matching requests with ``status`` and ``body``."""
        self.inject(
            Fault("respond", times, path, method, Response(status, body, dict(headers or {})))
        )

    def rate_limit(
        self, *, retry_after: float | str | None = 1, times: int = 1, path: str | None = None
    ) -> None:
        """The next ``times`` requests get the provider's 429 with ``Retry-After``."""
        headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
        self.fail(429, self.rate_limit_body(), headers=headers, times=times, path=path)

    def server_error(self, status: int = 503, *, times: int = 1, path: str | None = None) -> None:
        """The next ``times`` requests get a 5xx in the provider's error shape."""
        self.fail(status, self.server_error_body(status), times=times, path=path)

    def hang(self, *, times: int = 1, path: str | None = None) -> None:
        """The next ``times`` requests never answer (the client times out)."""
        self.inject(Fault("hang", times, path))

    def malformed(self, *, times: int = 1, path: str | None = None) -> None:
        """The next ``times`` requests get 200 with a body that is not the expected JSON."""
        self.inject(
            Fault(
                "respond",
                times,
                path,
                None,
                Response(200, b"<html>upstream proxy error</html>", {"Content-Type": "text/html"}),
            )
        )

    def drop(self, *, times: int = 1, path: str | None = None) -> None:
        """The next ``times`` requests have their connection closed with no answer."""
        self.inject(Fault("drop", times, path))

    def hang_after_accept(
        self, *, times: int = 1, path: str | None = None, method: str | None = "POST"
    ) -> None:
        """The next ``times`` matching requests are handled, then never answered."""
        self.inject(Fault("hang_after", times, path, method))

    def drop_after_accept(
        self, *, times: int = 1, path: str | None = None, method: str | None = "POST"
    ) -> None:
        """The next ``times`` matching requests are handled, then their connection closed."""
        self.inject(Fault("drop_after", times, path, method))

    def rate_limit_body(self) -> Any:
        """The provider's 429 body (override)."""
        return {"error": "rate limited"}

    def server_error_body(self, status: int) -> Any:
        """The provider's 5xx body (override)."""
        return {"error": "internal error"}

    def requests_to(self, pattern: str, method: str | None = None) -> list[Request]:
        """Recorded requests whose path matches ``pattern`` (and ``method``)."""
        with self._lock:
            return [
                r
                for r in self.requests
                if re.search(pattern, r.path) and (method is None or r.method == method)
            ]

    def handled_to(self, pattern: str, method: str | None = None) -> list[Request]:
        """Handled requests whose path matches ``pattern`` (and ``method``)."""
        with self._lock:
            return [
                r
                for r in self.handled
                if re.search(pattern, r.path) and (method is None or r.method == method)
            ]

    def issue_media_url(self, name: str) -> str:
        """A freshly 'signed' URL for media ``name`` on this server (see :meth:`expire_urls`)."""
        token = secrets.token_hex(8)
        with self._lock:
            self.media_tokens.add(token)
        return f"{self.url}/media/{token}/{name}"

    def expire_urls(self) -> None:
        """Make every media URL issued so far answer 403, like an expired signature."""
        with self._lock:
            self.media_tokens.clear()

    def media_valid(self, token: str) -> bool:
        """True when ``token`` was issued and has not expired."""
        with self._lock:
            return token in self.media_tokens

    def _take_fault(self, request: Request) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(request):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        request = Request(
            method=handler.command,
            path=parts.path,
            query=parse_qs(parts.query),
            headers={k.lower(): v for k, v in handler.headers.items()},
            body=body,
        )
        with self._lock:
            self.requests.append(request)
        if self.latency:
            time.sleep(self.latency)
        fault = self._take_fault(request)
        if fault is not None and fault.kind == "hang":
            self._stopping.wait(self.hang_seconds)
            handler.close_connection = True
            return
        if fault is not None and fault.kind == "drop":
            handler.close_connection = True
            return
        if fault is not None and fault.response is not None:
            response = fault.response
        else:
            response = self._dispatch(request)
            with self._lock:
                self.handled.append(request)
        if fault is not None and fault.kind == "hang_after":
            self._stopping.wait(self.hang_seconds)
            handler.close_connection = True
            return
        if fault is not None and fault.kind == "drop_after":
            handler.close_connection = True
            return
        payload, headers = response.encoded()
        handler.send_response(response.status)
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        if request.method != "HEAD":
            handler.wfile.write(payload)

    def _dispatch(self, request: Request) -> Response:
        for method, pattern, route in self._routes:
            matched = pattern.fullmatch(request.path)
            if matched and method == request.method:
                request.match = matched.groupdict()
                return route(request)
        return self.not_found(request)

    def serve_media(self, request: Request) -> Response:
        """``GET /media/{token}/{name}``: the media, or 403 once :meth:`expire_urls` ran."""
        from tests.fakes.media import media_bytes

        if not self.media_valid(request.match["token"]):
            return Response(
                403,
                b'<?xml version="1.0"?><Error><Code>AccessDenied</Code>'
                b"<Message>Request has expired</Message></Error>",
                {"Content-Type": "application/xml"},
            )
        name = request.match["name"]
        kind = {"mp4": "video/mp4", "mp3": "audio/mpeg", "png": "image/png"}[name.rsplit(".")[-1]]
        return Response(200, media_bytes(name), {"Content-Type": kind})

    def add_media_route(self) -> None:
        """Serve :meth:`serve_media` at ``/media/{token}/{name}``."""
        self.route("GET", r"/media/(?P<token>\w+)/(?P<name>[\w.]+)", self.serve_media)

    def not_found(self, request: Request) -> Response:
        """The answer for an unknown path (override for the provider's shape)."""
        return Response(404, {"error": f"no route for {request.method} {request.path}"})


@dataclass
class Job:
    """A fake provider job.

    ``outcome`` is ``succeed``, ``fail`` or ``never`` (stays running forever); the job reaches
    it after ``steps`` status polls, and not before ``hold_seconds`` have passed since it was
    submitted.
    """

    id: str
    outcome: str = "succeed"
    steps: int = 2
    polls: int = 0
    request: Any = None
    cancelled: bool = False
    hold_seconds: float = 0.0
    created: float = field(default_factory=time.monotonic)

    @property
    def held(self) -> bool:
        """True while ``hold_seconds`` have not passed since submission."""
        return time.monotonic() - self.created < self.hold_seconds

    def advance(self) -> int:
        """Count a poll and return how many polls came before it."""
        self.polls += 1
        return self.polls - 1

    @property
    def finished(self) -> bool:
        """True once ``steps`` polls have answered non-terminal (never for ``never``)."""
        return self.outcome != "never" and self.polls > self.steps and not self.held


class JobBook:
    """Thread-safe job storage with defaults for new jobs (``outcome``, ``steps``)."""

    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}
        self.outcome = "succeed"
        self.steps = 2
        self.hold_seconds = 0.0
        self.next_outcomes: list[str] = []
        self._lock = threading.Lock()

    def create(self, job_id: str | None = None, *, request: Any = None, **kwargs: Any) -> Job:
        """A new job using the queued ``next_outcomes`` first, then the defaults."""
        with self._lock:
            outcome = kwargs.pop("outcome", None)
            if outcome is None:
                outcome = self.next_outcomes.pop(0) if self.next_outcomes else self.outcome
            job = Job(
                id=job_id or secrets.token_hex(16),
                outcome=outcome,
                steps=kwargs.pop("steps", self.steps),
                hold_seconds=kwargs.pop("hold_seconds", self.hold_seconds),
                request=request,
                **kwargs,
            )
            self.jobs[job.id] = job
            return job

    def get(self, job_id: str) -> Job | None:
        """The job, or ``None``."""
        with self._lock:
            return self.jobs.get(job_id)

    def poll(self, job_id: str) -> Job | None:
        """The job after counting one poll, or ``None``."""
        with self._lock:
            job = self.jobs.get(job_id)
            if job is not None:
                job.advance()
            return job
