"""Loopback HTTP services for tests: each answers from a route table a test can change.

A route's answer is a ``(status, content type, body)`` tuple, or a callable returning one (for
services whose answer depends on something live, such as whether their Redis answers).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answer = tuple[int, str, bytes]
Route = Answer | Callable[[], Answer]
Routes = dict[str, Route]

NOT_FOUND: Answer = (404, "text/plain", b"not found")


class Platform:
    """A set of loopback HTTP services; ``add`` starts one and returns its base URL."""

    def __init__(self) -> None:
        self.routes: dict[int, Routes] = {}
        self.hits = 0
        self._servers: list[ThreadingHTTPServer] = []

    def add(self, routes: Routes) -> str:
        platform = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                platform.hits += 1
                port = self.server.server_address[1]
                route = platform.routes[port].get(self.path.split("?")[0], NOT_FOUND)
                status, content_type, body = route() if callable(route) else route
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        port = int(server.server_address[1])
        self.routes[port] = dict(routes)
        self._servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{port}"

    def close(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
