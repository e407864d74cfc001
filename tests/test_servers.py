"""The throwaway-server fixtures themselves: a port taken between choosing it and starting
the server (another suite on the same machine) must not fail a whole session's tests."""

from __future__ import annotations

import socket

from tests.servers import RedisServer, ServerUnavailable, port_open, unavailable


def test_a_server_whose_port_was_taken_starts_on_another() -> None:
    try:
        server = RedisServer()
    except ServerUnavailable as exc:
        unavailable(str(exc))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        server.port = taken
        with server:
            assert server.port != taken
            assert server.running
            assert port_open(server.port)
