"""Small local stand-ins for the outside world, started by the tests on 127.0.0.1."""

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

# The test ports of the notifications suite (fake providers); Flower and a private Redis use
# FLOWER_TEST_PORT and REDIS_TEST_PORT.
PORT_RANGE = range(15100, 15150)
FLOWER_TEST_PORT = 15155
REDIS_TEST_PORT = 15179


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict
    body: bytes
    at: float  # time.monotonic() on arrival

    @property
    def form(self) -> dict:
        return {k: v[0] if len(v) == 1 else v for k, v in parse_qs(self.body.decode()).items()}

    @property
    def json(self):
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    body: object = field(default_factory=dict)  # JSON-encoded unless bytes
    headers: dict = field(default_factory=dict)
    delay: float = 0.0  # answer late (timeouts)


class FakeProvider:
    """An HTTP server answering every request with the next scripted Reply (the last repeats)
    and recording what it was sent."""

    def __init__(self, replies):
        self.replies = list(replies)
        self.requests: list[Recorded] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                fake.requests.append(
                    Recorded(self.command, self.path, dict(self.headers.items()), body, time.monotonic())
                )
                reply = fake.replies[min(len(fake.requests), len(fake.replies)) - 1]
                if reply.delay:
                    time.sleep(reply.delay)
                data = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
                try:
                    self.send_response(reply.status)
                    for name, value in {"Content-Type": "application/json", **reply.headers}.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up (a timeout test)

            def log_message(self, *args):
                pass

        for port in PORT_RANGE:
            try:
                self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
                break
            except OSError:
                continue
        else:
            raise RuntimeError("no free port in the test range")
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Mail:
    mail_from: str
    rcpt_tos: list
    content: bytes
    at: float


class MailServer:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that accepts mail into `.delivered`, unless a
    reply is scripted for a command: `MailServer(RCPT=["450 4.2.0 greylisted"])` answers the
    first RCPT with 450 and accepts the next one. Scripts exist for EHLO (also used for HELO),
    AUTH (then the server offers AUTH without TLS and accepts any login once the script is
    used up), MAIL, RCPT and DATA; `.commands` records every scripted-or-not command it saw.

    `port=` pins the port (a server that comes back where it was); `stop()` then `start()`."""

    def __init__(self, *, port: int | None = None, **script):
        self.script = {command: list(replies) for command, replies in script.items()}
        self.delivered: list[Mail] = []
        self.commands: list[str] = []
        self.port = port
        self.controller = None

    def _scripted(self, command: str) -> str | None:
        self.commands.append(command)
        replies = self.script.get(command)
        return replies.pop(0) if replies else None

    # aiosmtpd's handler hooks.
    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        reply = self._scripted("EHLO")
        if reply:
            return [reply]
        session.host_name = hostname
        return responses

    async def handle_HELO(self, server, session, envelope, hostname):
        reply = self._scripted("EHLO")
        if reply:
            return reply
        session.host_name = hostname
        return f"250 {server.hostname}"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        from aiosmtpd.smtp import AuthResult

        reply = self._scripted("AUTH")
        return AuthResult(success=False, handled=False, message=reply) if reply else AuthResult(success=True)

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        reply = self._scripted("MAIL")
        if reply:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self._scripted("RCPT")
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        reply = self._scripted("DATA")
        if reply:
            return reply
        self.delivered.append(Mail(envelope.mail_from, list(envelope.rcpt_tos), envelope.content, time.monotonic()))
        return "250 2.0.0 Message accepted for delivery"

    def start(self):
        from aiosmtpd.controller import Controller

        for port in [self.port] if self.port else PORT_RANGE:
            auth = {"authenticator": self.authenticate, "auth_require_tls": False} if "AUTH" in self.script else {}
            controller = Controller(self, hostname="127.0.0.1", port=port, **auth)
            try:
                controller.start()
            except OSError:
                continue
            self.controller, self.port = controller, port
            return self
        raise RuntimeError(f"no free port for the SMTP server ({self.port or 'the test range'})")

    def stop(self):
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


def free_port() -> int:
    """A port in the test range where nothing listens now (a mail server that is down)."""
    import socket

    for port in PORT_RANGE:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in the test range")


class BusyGreeter:
    """An SMTP server so busy it answers the connection with `421` and hangs up (RFC 5321
    3.8): the one phase aiosmtpd cannot be scripted for, as its greeting is always 220."""

    def __init__(self, greeting: bytes = b"421 4.3.2 Too many connections, try again later\r\n"):
        import socketserver

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                self.request.sendall(greeting)

        for port in PORT_RANGE:
            try:
                self.server = socketserver.ThreadingTCPServer(("127.0.0.1", port), Handler)
                break
            except OSError:
                continue
        else:
            raise RuntimeError("no free port in the test range")
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
