"""Throwaway certificate authorities and certificates for the TLS tests, made with the openssl command.

``CertificateAuthority(folder, name)`` makes a CA (its key and self-signed certificate, ``ca.pem``);
``issue(name, sans)`` makes a key and a certificate signed by it for those subject alternative names
(``IP:127.0.0.1``, ``DNS:localhost``), usable by a server or a client. Keys are RSA 2048, unencrypted,
valid for a day: made in a few tens of milliseconds each, and gone with the test's folder.
``tls_server(issued)`` serves a TLS handshake with one, for code that blocks the test's thread.
"""
from __future__ import annotations

import socketserver
import ssl
import subprocess
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


@dataclass(frozen=True)
class Issued:
    cert: Path
    key: Path


class CertificateAuthority:
    def __init__(self, folder: Path, name: str = "midi_app test CA") -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.key = folder / "ca.key"
        self.cert = folder / "ca.pem"
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(self.key), "-out", str(self.cert),
                "-days", "1", "-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign")

    def issue(self, name: str, sans: tuple[str, ...] = ("IP:127.0.0.1", "DNS:localhost")) -> Issued:
        key, request, cert = (self.folder / f"{name}.key", self.folder / f"{name}.csr", self.folder / f"{name}.pem")
        openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(request),
                "-subj", f"/CN={name}")
        extensions = self.folder / f"{name}.ext"
        extensions.write_text(f"subjectAltName={','.join(sans)}\nextendedKeyUsage=serverAuth,clientAuth\n")
        openssl("x509", "-req", "-in", str(request), "-CA", str(self.cert), "-CAkey", str(self.key),
                "-CAcreateserial", "-out", str(cert), "-days", "1", "-extfile", str(extensions))
        return Issued(cert, key)


@contextmanager
def tls_server(issued: Issued) -> Iterator[int]:
    """A server on loopback that completes a TLS handshake with ``issued`` (when the client trusts it) and
    says nothing more, on threads of its own; yields its port. For code that blocks the test's thread."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(issued.cert, issued.key)

    class Handshake(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            try:
                with context.wrap_socket(self.request, server_side=True) as connection:
                    connection.recv(1)
            except OSError:  # the client refused the certificate, or hung up
                pass

    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handshake) as server:
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            yield server.server_address[1]
        finally:
            server.shutdown()
