"""nginx/ as docker-compose.yml renders it (the NGINX_* environment `docker compose config`
gives the nginx service), run by the real nginx on loopback ports. Docker publishes
HTTP_PORT/HTTPS_PORT on the host and forwards them to 80/443 inside the container, so a client's
Host header names the published port while nginx listens on another: the test sends that Host.
No upstream is needed: redirects are nginx's own answers."""

import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path
from urllib.parse import urljoin

import httpx
import pytest

from .compose import ROOT, compose_json, filled_env

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
DOMAIN = "referrals.example.org"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Nginx:
    def __init__(self, tmp_path: Path, *, tls: bool, **env_overrides):
        config = compose_json(tmp_path / "compose", filled_env(DOMAIN=DOMAIN, **env_overrides))
        env = {k: v.replace("$$", "$") for k, v in config["services"]["nginx"]["environment"].items()}
        self.http_port, self.https_port = _free_port(), _free_port()
        certs = tmp_path / "certs"
        certs.mkdir()
        if tls:
            subprocess.run(
                [
                    *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
                    *("-subj", f"/CN={DOMAIN}", "-keyout", str(certs / "privkey.pem")),
                    *("-out", str(certs / "fullchain.pem")),
                ],
                check=True,
                capture_output=True,
            )
        # What only the container has: loopback ports instead of 80/443, paths in tmp_path.
        env.update(
            NGINX_HTTP_LISTEN=f"127.0.0.1:{self.http_port}",
            NGINX_HTTPS_LISTEN=f"127.0.0.1:{self.https_port}",
            NGINX_UPSTREAM_WEB="127.0.0.1:9",
            NGINX_UPSTREAM_FLOWER="127.0.0.1:9",
            NGINX_STATIC_ROOT=str(tmp_path / "static"),
            NGINX_ACME_ROOT=str(tmp_path / "acme"),
            NGINX_SSL_CERT=str(certs / "fullchain.pem"),
            NGINX_SSL_KEY=str(certs / "privkey.pem"),
        )
        env.pop("NGINX_USER_GROUP")  # the image's nginx group; not on this machine
        self.dir = tmp_path / "nginx"
        rendered = subprocess.run(
            ["deploy/render-nginx.sh", str(self.dir)],
            cwd=ROOT,
            env={"PATH": os.environ["PATH"], **env},
            capture_output=True,
            text=True,
        )
        assert rendered.returncode == 0, rendered.stderr
        # The certificate is checked; the name is not (the test connects to 127.0.0.1 by address).
        self.tls = ssl.create_default_context(cafile=str(certs / "fullchain.pem")) if tls else None
        if self.tls:
            self.tls.check_hostname = False
        self.proc = subprocess.Popen(
            [
                NGINX,
                "-e",
                str(self.dir / "error.log"),
                "-p",
                str(self.dir),
                "-c",
                str(self.dir / "nginx.conf"),
                "-g",
                "daemon off;",
            ],
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        deadline = time.monotonic() + 10
        while not self._listening():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"nginx did not start: {self.proc.stderr.read().decode() if self.proc.stderr else ''}")
            time.sleep(0.05)

    def _listening(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.http_port), timeout=0.2).close()
            return True
        except OSError:
            return False

    def get(self, scheme: str, path: str, host: str) -> httpx.Response:
        port = self.https_port if scheme == "https" else self.http_port
        return httpx.get(
            f"{scheme}://127.0.0.1:{port}{path}", headers={"Host": host}, verify=self.tls or True, timeout=5
        )

    def stop(self):
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=10)


@pytest.fixture
def nginx(tmp_path):
    started = []

    def start(**kwargs):
        server = Nginx(tmp_path, **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def _location(answer: httpx.Response, requested: str) -> str:
    """Where a browser goes next: the Location resolved against the URL it asked for."""
    assert answer.status_code == 301, answer.text
    return urljoin(requested, answer.headers["location"])


def test_http_redirects_to_https_on_the_published_https_port(nginx):
    server = nginx(tls=True, HTTP_PORT="8080", HTTPS_PORT="8443")

    answer = server.get("http", "/my_profile/?a=1", host=f"{DOMAIN}:8080")

    assert _location(answer, f"http://{DOMAIN}:8080/my_profile/?a=1") == f"https://{DOMAIN}:8443/my_profile/?a=1"


def test_http_redirects_to_https_without_a_port_on_the_standard_ones(nginx):
    server = nginx(tls=True)

    answer = server.get("http", "/my_profile/", host=DOMAIN)

    assert answer.headers["location"] == f"https://{DOMAIN}/my_profile/"


@pytest.mark.parametrize(("tls", "scheme", "port"), [(True, "https", "8443"), (False, "http", "8080")])
def test_the_flower_redirect_keeps_the_published_port(nginx, tls, scheme, port):
    server = nginx(tls=tls, HTTP_PORT="8080", HTTPS_PORT="8443")

    answer = server.get(scheme, "/flower", host=f"{DOMAIN}:{port}")

    assert _location(answer, f"{scheme}://{DOMAIN}:{port}/flower") == f"{scheme}://{DOMAIN}:{port}/flower/"


def test_metrics_are_refused_to_an_address_outside_metrics_allowed(nginx):
    server = nginx(tls=False, METRICS_ALLOWED="10.0.0.0/8,fc00::/7")

    assert server.get("http", "/metrics", host=DOMAIN).status_code == 403
    # Only /metrics is fenced: the site itself goes to the (absent) upstream.
    assert server.get("http", "/health/", host=DOMAIN).status_code == 502


def test_metrics_pass_to_the_app_from_an_allowed_address(nginx):
    server = nginx(tls=False)  # METRICS_ALLOWED empty: loopback and the private ranges

    assert server.get("http", "/metrics", host=DOMAIN).status_code == 502  # the (absent) upstream
