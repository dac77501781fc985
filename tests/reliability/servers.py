"""Real processes the reliability tests start, stop and kill: gunicorn serving the app, a
redis-server and a PostgreSQL cluster of their own, a PgBouncer in front of the test database,
and an SMS provider stand-in.

Ports: this suite owns 127.0.0.1:15600-15699 (gunicorn 15601-15609, provider 15610-15619,
PostgreSQL 15632, PgBouncer 15633, Redis 15679).
"""

import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import httpx

from tests.utils import port_free

ROOT = Path(__file__).resolve().parents[2]
GUNICORN_PORTS = range(15601, 15610)
PROVIDER_PORTS = range(15610, 15620)
POSTGRES_PORT = 15632
PGBOUNCER_PORT = 15633
REDIS_PORT = 15679


def free_port(ports) -> int:
    for port in ports:
        if port_free(port):
            return port
    raise RuntimeError(f"no free port in {ports}")


def _wait(predicate, timeout: float, what: str, proc=None, log_path=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.05)
    log = Path(log_path).read_text(errors="replace")[-4000:] if log_path else ""
    raise RuntimeError(f"{what} did not come up\n{log}")


class Gunicorn:
    """`gunicorn project.wsgi` on a port of ours, with the environment the test gives."""

    def __init__(self, tmp_path, env: dict, workers: int = 2, threads: int = 4, port: int | None = None):
        self.port = port or free_port(GUNICORN_PORTS)
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp_path / f"gunicorn-{self.port}.log"
        self.access_log_path = tmp_path / f"gunicorn-{self.port}-access.log"
        self.env = {**os.environ, "HTTPS": "0", "ALLOWED_HOSTS": "127.0.0.1,localhost", **env}
        self.workers, self.threads = workers, threads
        self.proc = None

    def start(self):
        self.log = open(self.log_path, "a")  # noqa: SIM115 (closed in stop)
        command = [sys.executable, "-m", "gunicorn", "project.wsgi:application"]
        command += ["--bind", f"127.0.0.1:{self.port}", "--workers", str(self.workers), "--threads", str(self.threads)]
        command += ["--access-logfile", str(self.access_log_path), "--timeout", "60", "--graceful-timeout", "5"]
        self.proc = subprocess.Popen(
            command, cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        _wait(self._answers, 30, "gunicorn", self.proc, self.log_path)
        return self

    def _answers(self) -> bool:
        try:
            return httpx.get(self.url + "/health/", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            self.log.close()
        self.proc = None

    def logs(self) -> str:
        text = self.log_path.read_text(errors="replace")
        if self.access_log_path.exists():
            text += self.access_log_path.read_text(errors="replace")
        return text


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} is not installed")
    return found[-1]


class PrivatePostgres:
    """A throw-away PostgreSQL cluster (initdb in a temp folder, run as the `postgres` OS user
    when we are root), so a test may restart the database under a running app."""

    def __init__(self, port: int = POSTGRES_PORT):
        self.port = port
        self.dir = Path(tempfile.mkdtemp(prefix="reliability-pg-"))
        self.data = self.dir / "data"
        self.log_path = self.dir / "postgres.log"
        self.url = f"postgres://postgres@127.0.0.1:{port}/app"

    def _run(self, *command, check=True):
        if os.geteuid() == 0:
            command = ("runuser", "-u", "postgres", "--", *command)
        return subprocess.run(command, check=check, capture_output=True, text=True, timeout=120)

    def init(self):
        if not port_free(self.port):
            raise RuntimeError(f"port {self.port} is taken")
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run(_pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync")
        self.start()
        self._run(_pg_bin("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "app")
        return self

    def _ctl(self, action: str, *extra):
        options = f"-h 127.0.0.1 -p {self.port} -k {self.dir} -c fsync=off"
        return self._run(
            _pg_bin("pg_ctl"), action, "-D", str(self.data), "-l", str(self.log_path), "-o", options, "-w", *extra
        )

    def start(self):
        self._ctl("start")

    def restart(self):
        self._ctl("restart", "-m", "fast")

    def stop(self):
        if (self.data / "postmaster.pid").exists():
            self._run(_pg_bin("pg_ctl"), "stop", "-D", str(self.data), "-m", "immediate", "-w", check=False)

    def destroy(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def pgbouncer_binary() -> str | None:
    """Debian's package installs it in /usr/sbin, which a non-root PATH may lack."""
    return shutil.which("pgbouncer", path=os.environ.get("PATH", "") + os.pathsep + "/usr/sbin")


class PgBouncer:
    """A PgBouncer of the test's own in front of one PostgreSQL database, in transaction mode with
    a small pool, so the clients' transactions really take turns on a few server connections.

    `database` is a Django settings dict (NAME, USER, HOST, PORT): HOST may be an address or a
    unix socket folder. Clients reach it at `url`, under the same database name. PgBouncer
    refuses to run as root: when we are root it runs as the `postgres` OS user, its config in a
    temp folder of that user's.
    """

    def __init__(self, database: dict, *, port: int = PGBOUNCER_PORT, pool_size: int = 5):
        self.binary = pgbouncer_binary()
        if self.binary is None:
            raise RuntimeError("pgbouncer is not installed (Debian: apt-get install pgbouncer)")
        self.port, self.pool_size = port, pool_size
        self.name, self.user = database["NAME"], database["USER"] or "postgres"
        self.server = (database["HOST"] or "127.0.0.1", int(database["PORT"] or 5432))
        self.url = f"postgres://{self.user}@127.0.0.1:{port}/{self.name}"
        self.dir = Path(tempfile.mkdtemp(prefix="reliability-pgbouncer-"))
        self.log_path = self.dir / "pgbouncer.log"
        self.proc = None

    def _write_config(self) -> Path:
        host, port = self.server
        (self.dir / "users.txt").write_text(f'"{self.user}" ""\n')
        config = self.dir / "pgbouncer.ini"
        config.write_text(
            "[databases]\n"
            f"{self.name} = host={host} port={port} dbname={self.name} user={self.user}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            # trust: the server side is trust too (the test cluster); the name must be in auth_file.
            f"auth_type = trust\nauth_file = {self.dir / 'users.txt'}\n"
            f"admin_users = {self.user}\n"
            f"pool_mode = transaction\ndefault_pool_size = {self.pool_size}\n"
            "min_pool_size = 0\nreserve_pool_size = 0\nmax_client_conn = 500\n"
        )
        return config

    def start(self):
        if not port_free(self.port):
            raise RuntimeError(f"port {self.port} is taken")
        command = [self.binary, str(self._write_config())]
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            command = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", *command]
        self.log = open(self.log_path, "a")  # noqa: SIM115 (closed in stop)
        # In the foreground (no -d): the process is ours to stop, its log on stderr.
        self.proc = subprocess.Popen(
            command, cwd=self.dir, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        _wait(lambda: not port_free(self.port), 15, "pgbouncer", self.proc, self.log_path)
        return self

    def show(self, what: str) -> list[dict]:
        """The admin console's SHOW <what> (POOLS, STATS, CLIENTS...) as rows of this database."""
        import psycopg
        from psycopg.rows import dict_row

        # The admin console speaks the simple query protocol only: a client-side-binding cursor.
        url = f"postgres://{self.user}@127.0.0.1:{self.port}/pgbouncer"
        with psycopg.connect(url, autocommit=True, cursor_factory=psycopg.ClientCursor) as conn:
            rows = conn.cursor(row_factory=dict_row).execute(f"SHOW {what}").fetchall()
        return [row for row in rows if row.get("database") in (None, self.name)]

    def stop(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()  # SIGTERM: immediate shutdown, the server connections closed
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.log.close()
        self.proc = None

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def destroy(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class ProviderStandIn:
    """An SMS.ru-shaped HTTP server that counts the requests it gets per message.

    Each message's text carries a tag (`msg-<n>`); `counts` maps tag -> requests seen. It holds
    every answer for `delay` seconds, so a test can kill the worker while a request is in
    flight (`in_flight` is the tag being answered, None between requests).
    """

    TAG = re.compile(r"msg-\d+")

    def __init__(self, delay: float = 0.0):
        self.delay = delay
        self.counts: Counter = Counter()
        self.answered: Counter = Counter()
        self.in_flight: set = set()
        self.lock = threading.Lock()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                form = {k: v[0] for k, v in parse_qs(body).items()}
                match = stand_in.TAG.search(form.get("msg", ""))
                tag = match.group(0) if match else "?"
                with stand_in.lock:
                    stand_in.counts[tag] += 1
                    stand_in.in_flight.add(tag)
                time.sleep(stand_in.delay)
                to = form.get("to", "")
                data = f'{{"status": "OK", "sms": {{"{to}": {{"status": "OK", "sms_id": "{tag}"}}}}}}'.encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    with stand_in.lock:
                        stand_in.answered[tag] += 1
                except OSError:
                    pass  # the worker died while we held the answer
                finally:
                    with stand_in.lock:
                        stand_in.in_flight.discard(tag)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port(PROVIDER_PORTS)), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
