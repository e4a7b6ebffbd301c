"""The HTTP plumbing every fake shares: a threaded server on loopback, requests recorded, replies that
a fake builds from its state, optional per-reply delays, and waiting for a state the agents' requests
bring about (woken by each request, not by polling)."""

from __future__ import annotations

import json
import os
import selectors
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # decoded, without the query string
    query: dict[str, str]  # last value wins; `?recurse` gives {"recurse": ""}
    headers: dict[str, str]  # names in lower case
    body: bytes
    raw_path: str  # as sent, still encoded, with the query string

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (outside the fake's lock)

    @classmethod
    def json(cls, data: Any, status: int = 200, content_type: str = "application/json") -> Reply:
        return cls(status, json.dumps(data).encode(), {"Content-Type": content_type})

    @classmethod
    def text(cls, text: str, status: int = 200, content_type: str = "text/plain", *, delay: float = 0.0) -> Reply:
        return cls(status, text.encode(), {"Content-Type": content_type}, delay)


class FakeServer:
    """Subclasses implement `handle(request) -> Reply`; it runs under `self.lock`, so a test that changes
    state under the same lock (or between calls) never sees a half-applied request."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._answered = threading.Condition(self.lock)
        self._stop_serving = -1  # write end of the pipe that stops the serving thread
        self.requests: list[Request] = []
        self.errors: list[str] = []  # exceptions raised by `handle` (a bug in the fake): answered 500
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def handle(self, request: Request) -> Reply:
        raise NotImplementedError

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started: use it as a context manager")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def wait_until(self, condition: Callable[[], bool], *, timeout: float | None = 20.0) -> None:
        """Returns once `condition()` holds, checked under the lock now and after every request this fake
        answers; AssertionError after `timeout` seconds (None: no limit, for a daemon thread)."""
        with self._answered:
            if not self._answered.wait_for(condition, timeout):
                raise AssertionError(f"{type(self).__name__}: condition not reached in {timeout}s")

    def _dispatch(self, request: Request) -> Reply:
        with self.lock:
            self.requests.append(request)
            try:
                return self.handle(request)
            except Exception as error:
                self.errors.append(f"{request.method} {request.raw_path}: {error!r}")
                return Reply.text(f"fake error: {error!r}", 500)
            finally:
                self._answered.notify_all()

    def _serve(self, server: ThreadingHTTPServer, wake: int) -> None:
        # Not serve_forever: its shutdown waits up to a poll interval; this loop blocks until a connection
        # comes or `__exit__` writes to the `wake` pipe (a pipe: the server may live in another network
        # namespace than the thread that stops it).
        server.timeout = None
        with selectors.DefaultSelector() as selector:
            selector.register(server, selectors.EVENT_READ)
            selector.register(wake, selectors.EVENT_READ)
            while all(key.fd != wake for key, _ in selector.select()):
                server.handle_request()
        os.close(wake)

    def __enter__(self) -> Self:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urllib.parse.urlsplit(self.path)
                request = Request(
                    method=self.command,
                    path=urllib.parse.unquote(parts.path),
                    query=dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True)),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                    raw_path=self.path,
                )
                reply = fake._dispatch(request)
                if reply.delay:
                    time.sleep(reply.delay)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.send_header("Connection", "close")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(reply.body)
                self.close_connection = True

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = _Server(("127.0.0.1", 0), Handler)
        wake, self._stop_serving = os.pipe()
        self._thread = threading.Thread(
            target=self._serve, args=(self._server, wake), name=type(self).__name__, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is None or self._thread is None:
            return
        os.write(self._stop_serving, b"x")
        self._thread.join(timeout=5)
        os.close(self._stop_serving)
        self._server.server_close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up mid-reply (an agent's timeout, which some tests provoke) is not the fake's error.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)
