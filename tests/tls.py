"""Throwaway certificates, and TLS in front of the embedded PostgreSQL.

pgserver's PostgreSQL is built without OpenSSL, so it cannot serve TLS
itself. `PostgresTlsFront` speaks PostgreSQL's own TLS negotiation for it:
it answers libpq's SSLRequest with "S", completes the handshake with the
given certificate, and relays the protocol inside to the real server. From
libpq's side this is exactly a PostgreSQL with `ssl = on`, which is what the
client's sslmode=verify-full checks are about.
"""

from __future__ import annotations

import contextlib
import datetime
import select
import socket
import ssl
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SSL_REQUEST = 80877103  # PostgreSQL protocol: "I would like TLS"
GSSENC_REQUEST = 80877104  # "I would like GSSAPI encryption" (answered "N")
IO_TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class Authority:
    """A CA's certificate file, and what it needs to sign server certificates."""

    cert_file: Path
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @classmethod
    def create(cls, directory: Path, name: str) -> Authority:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        cert = (
            _builder(subject, subject, key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_key_usage(cert_sign=True), critical=True)
            .sign(key, hashes.SHA256())
        )
        cert_file = directory / f"{name}.pem"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return cls(cert_file, key, cert)

    def issue(self, directory: Path, host: str) -> tuple[Path, Path]:
        """A server certificate for DNS name `host`: (certificate file, key file)."""
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
        cert = (
            _builder(subject, self.cert.subject, key.public_key())
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(cert_sign=False), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        cert_file, key_file = directory / f"{host}.crt", directory / f"{host}.key"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return cert_file, key_file


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


class PostgresTlsFront:
    """A TLS listener on 127.0.0.1 that relays to a PostgreSQL at `backend`
    (a Unix socket file or a (host, port) pair)."""

    def __init__(self, backend: str | tuple[str, int], cert_file: Path, key_file: Path) -> None:
        self._backend = backend
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(cert_file, key_file)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self._listener.close()
        self._thread.join(timeout=IO_TIMEOUT_SECONDS)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        client.settimeout(IO_TIMEOUT_SECONDS)
        with contextlib.ExitStack() as stack:
            stack.callback(client.close)
            while True:
                request = _read_exactly(client, 8)
                if request is None:
                    return
                _, code = struct.unpack("!II", request)
                if code == GSSENC_REQUEST:
                    client.sendall(b"N")
                    continue
                if code != SSL_REQUEST:
                    return  # a client that did not ask for TLS: this server has only TLS
                client.sendall(b"S")
                break
            try:
                tls = self._context.wrap_socket(client, server_side=True)
            except (ssl.SSLError, OSError):
                return  # the client rejected our certificate
            stack.callback(tls.close)
            backend = self._connect_backend()
            stack.callback(backend.close)
            _relay(tls, backend)

    def _connect_backend(self) -> socket.socket:
        if isinstance(self._backend, str):
            backend = socket.socket(socket.AF_UNIX)
            backend.settimeout(IO_TIMEOUT_SECONDS)
            backend.connect(self._backend)
            return backend
        return socket.create_connection(self._backend, timeout=IO_TIMEOUT_SECONDS)


def _read_exactly(sock: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _relay(tls: ssl.SSLSocket, backend: socket.socket) -> None:
    """Copy bytes both ways on one thread (an SSL socket is not safe to use from two)."""
    while True:
        if tls.pending():
            readable = [tls]
        else:
            readable, _, _ = select.select([tls, backend], [], [], IO_TIMEOUT_SECONDS)
            if not readable:
                return
        for sock in readable:
            other = backend if sock is tls else tls
            try:
                data = sock.recv(65536)
            except (ssl.SSLError, OSError):
                return
            if not data:
                return
            other.sendall(data)


@contextlib.contextmanager
def tls_front(
    backend: str | tuple[str, int], cert_file: Path, key_file: Path
) -> Iterator[PostgresTlsFront]:
    front = PostgresTlsFront(backend, cert_file, key_file)
    try:
        yield front
    finally:
        front.close()
