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
