"""A page that opens the worker's WebSocket and never reads a byte of it: the worst client there is."""
from __future__ import annotations

import base64
import contextlib
import os
import socket
from typing import Iterator

# The smallest receive buffer the kernel allows, so the worker's writes back up within seconds.
RECEIVE_BUFFER = 1024


@contextlib.contextmanager
def silent_websocket(host: str, port: int, path: str = "/live") -> Iterator[socket.socket]:
    """Connect and upgrade to a WebSocket, read the handshake's answer, then read nothing more."""
    connection = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
    connection.connect((host, port))
    key = base64.b64encode(os.urandom(16)).decode()
    request = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
    connection.sendall(request.encode())
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += connection.recv(1)
    assert answer.startswith(b"HTTP/1.1 101"), answer
    try:
        yield connection
    finally:
        connection.close()
