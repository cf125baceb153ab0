"""Small real servers for the client tests (no mocks: sockets on 127.0.0.1).

- :class:`CannedServer`: an HTTP/1.1 server answering every POST with a
  response built by a function (for gzip, bombs, DTDs, bad statuses).
- :class:`StdlibXMLRPCServer`: the standard library's SimpleXMLRPCServer in
  a thread, counting the TCP connections it accepts.
- :class:`SilentServer`: a socket that listens and never answers.
- :func:`self_signed_cert`: a certificate for 127.0.0.1, made with
  ``cryptography``.
"""

from __future__ import annotations

import datetime
import socket
import ssl
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from xmlrpc.server import SimpleXMLRPCRequestHandler, SimpleXMLRPCServer

from flask import Flask, request
from live import ServerThread

from flask_rpcenable import RPCEnable
from flask_rpcenable.auth.users import create_api_user

#: (status, headers, body) built from the request (headers, body).
Responder = Callable[[Any, bytes], tuple[int, list[tuple[str, str]], bytes]]


def xml_response(value_xml: str) -> bytes:
    return (
        "<?xml version='1.0'?>\n<methodResponse><params><param><value>"
        f"{value_xml}</value></param></params></methodResponse>\n"
    ).encode()


class CannedServer(ServerThread):
    """An HTTP/1.1 server in a thread; ``responder`` builds each answer."""

    def __init__(
        self,
        responder: Responder,
        *,
        close_after_response: bool = False,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.connections = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                with outer._lock:
                    outer.connections += 1

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with outer._lock:
                    outer.requests.append((dict(self.headers.items()), body))
                status, headers, payload = responder(self.headers, body)
                self.send_response(status)
                names = {name.lower() for name, _ in headers}
                for name, value in headers:
                    self.send_header(name, value)
                if not names & {"content-length", "transfer-encoding"}:
                    self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                self.wfile.flush()
                if close_after_response:
                    # Keep-alive promised, then closed while idle: what servers
                    # with an idle timeout do.
                    self.close_connection = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._lock = threading.Lock()
        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        scheme = "http"
        if ssl_context is not None:
            scheme = "https"
            server.socket = ssl_context.wrap_socket(server.socket, server_side=True)
            # Failed handshakes (the verification tests) are expected: stay quiet.
            server.handle_error = lambda request, address: None  # type: ignore[method-assign]
        super().__init__(server, scheme=scheme, path="/RPC2")


class StdlibXMLRPCServer(ServerThread):
    """``xmlrpc.server.SimpleXMLRPCServer`` in a thread, counting connections."""

    def __init__(self, *, keep_alive: bool = True) -> None:
        outer = self
        self.connections = 0

        class Handler(SimpleXMLRPCRequestHandler):
            protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"
            rpc_paths = ("/RPC2",)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(SimpleXMLRPCServer):
            def get_request(self) -> tuple[socket.socket, Any]:
                pair = super().get_request()
                outer.connections += 1
                return pair

        # One thread, one connection at a time: SimpleXMLRPCServer serves a
        # kept-alive connection until the client closes it.
        server = Server(("127.0.0.1", 0), requestHandler=Handler, allow_none=True,
                        logRequests=False, use_builtin_types=True)
        server.register_introspection_functions()
        server.register_multicall_functions()
        server.register_function(lambda a, b: a + b, "add")
        server.register_function(lambda *args: list(args), "echo_args")
        server.register_function(lambda data: data, "echo")
        super().__init__(server, path="/RPC2")


class SilentServer:
    """Listens on 127.0.0.1 (the kernel completes connections) and never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]

    def close(self) -> None:
        self.sock.close()


def free_port() -> int:
    """A port nothing listens on (bound then closed at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """Write a certificate and key for 127.0.0.1; return (cert path, key path)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / "cert.pem"
    key_path = directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def make_remote(make_app: Callable[..., Flask], **config: Any) -> tuple[Flask, RPCEnable, str]:
    """An app with a few functions and an API user ``alice``; returns (app, rpc, key)."""
    rpc = RPCEnable()

    @rpc.register
    def echo(var: str = "") -> str:
        """Return the argument prefixed with 'Server says: '."""
        return f"Server says: {var}"

    @rpc.register(name="math.add")
    def add(a: int, b: int) -> int:
        return a + b

    @rpc.register
    def remote_port() -> int:
        return int(request.environ["REMOTE_PORT"])

    @rpc.register
    def types() -> dict:
        return {"when": datetime.datetime(2024, 1, 2, 3, 4, 5), "data": b"\x00\xff"}

    @rpc.register
    def nothing() -> None:
        return None

    @rpc.register
    @rpc.auth
    def auth_echo(user: Any, var: str = "") -> str:
        return f"User {user.username} says: {var}"

    @rpc.register(name="v2only", version=2)
    def v2only() -> str:
        return "version two"

    app = make_app(**config)
    rpc.init_app(app)
    state = rpc.state(app)
    with app.app_context():
        state.db.create_all()
        _user, key = create_api_user(state.db, state.models.APIUser, "alice")
    return app, rpc, key
