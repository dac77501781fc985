"""The deployment files agree with the code: every setting is documented for operators."""

import importlib.util
import ipaddress
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .compose import compose_config, compose_json, env_fill, filled_env

ROOT = Path(__file__).resolve().parents[2]


def _documented() -> set[str]:
    """Names in .env.example, set (NAME=) or shown commented out (# NAME=)."""
    text = (ROOT / ".env.example").read_text()
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", text, flags=re.M))


def test_env_example_documents_every_variable_the_settings_read():
    settings = (ROOT / "project" / "settings.py").read_text()
    read = set(re.findall(r"""(?:env(?:\.\w+)?\(|_required\()\s*["']([A-Z][A-Z0-9_]+)["']""", settings))
    assert len(read) > 20  # the pattern still finds them
    assert read - _documented() == set()


def test_env_example_documents_every_variable_docker_compose_reads():
    compose = (ROOT / "docker-compose.yml").read_text()
    used = set(re.findall(r"\$\{([A-Z][A-Z0-9_]+)", compose))
    assert "POSTGRES_PASSWORD" in used
    assert used - _documented() == set()


# --- .env.example filled only where it says "Required" (issue 19.12) ---


def _settings_start(environment: dict) -> subprocess.CompletedProcess:
    """`manage.py check --deploy` with exactly a container's environment: the settings import
    (which refuses to start on a missing secret) and Django's deployment checks."""
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), **environment}
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


APP_SERVICES = ("migrate", "web", "worker", "beat", "flower")


def test_env_example_marks_its_secrets_required():
    required = set(env_fill.required_names((ROOT / ".env.example").read_text()))
    assert {"SECRET_KEY", "POSTGRES_PASSWORD", "FLOWER_BASIC_AUTH"} <= required


def test_env_example_filled_only_where_it_says_required_starts(tmp_path):
    config = compose_json(tmp_path / "compose", filled_env())

    environments = {json.dumps(config["services"][name]["environment"], sort_keys=True) for name in APP_SERVICES}
    # The release step adds STATIC_EXPORT_DIR, the web and the worker their metrics folders (and
    # the web its name for Prometheus in ALLOWED_HOSTS); the rest is one environment.
    own = {"STATIC_EXPORT_DIR", "PROMETHEUS_MULTIPROC_DIR", "METRICS_COLLECT_DIRS", "ALLOWED_HOSTS"}
    shared = {
        json.dumps({k: v for k, v in json.loads(e).items() if k not in own}, sort_keys=True) for e in environments
    }
    assert len(environments) == 4 and len(shared) == 1
    assert config["services"]["web"]["environment"]["ALLOWED_HOSTS"].split(",")[-1] == "web"
    for environment in map(json.loads, environments):
        assert environment["DEBUG"] == "0"
        started = _settings_start(environment)
        assert started.returncode == 0, started.stderr


@pytest.mark.parametrize("name", sorted(env_fill.required_names((ROOT / ".env.example").read_text())))
def test_each_required_variable_left_blank_stops_the_stack(tmp_path, name):
    """The marks are honest: what says "Required" is needed (compose or the settings refuse)."""
    text = filled_env()
    text = re.sub(rf"^{name}=.*$", f"{name}=", text, flags=re.M)

    done = compose_config(tmp_path / "compose", text)
    if done.returncode != 0:
        assert name in done.stderr
        return
    config = json.loads(done.stdout)
    started = _settings_start(config["services"]["web"]["environment"])
    assert started.returncode != 0
    assert name in started.stderr


# --- nginx's address on the compose network (issue 19.11) ---

# Where engines pick the subnets of networks nobody fixed: Docker's local default-address-pools
# (libnetwork ipamutils), Docker Swarm's default pool for overlays, Podman's default network and
# its default_subnet_pools (containers.conf(5)).
AUTOMATIC_POOLS = [
    *(ipaddress.ip_network(f"172.{n}.0.0/16") for n in range(17, 32)),
    ipaddress.ip_network("192.168.0.0/16"),
    ipaddress.ip_network("10.0.0.0/8"),
]


def test_nginx_holds_a_fixed_address_no_other_container_can_take(tmp_path):
    config = compose_json(tmp_path / "compose", filled_env())

    (ipam,) = config["networks"]["default"]["ipam"]["config"]
    subnet = ipaddress.ip_network(ipam["subnet"])
    nginx = ipaddress.ip_address(config["services"]["nginx"]["networks"]["default"]["ipv4_address"])
    # A range no engine hands out by itself: no network created elsewhere on the host lands on it.
    assert [str(pool) for pool in AUTOMATIC_POOLS if subnet.overlaps(pool)] == []
    assert subnet.is_private
    # Every other container gets its address from ip_range, so nginx's can never be taken.
    assert "ip_range" in ipam
    dynamic = ipaddress.ip_network(ipam["ip_range"])
    assert dynamic.subnet_of(subnet)
    assert nginx in subnet
    assert nginx not in dynamic
    assert nginx not in (subnet.network_address, subnet.broadcast_address, next(subnet.hosts()))  # .1: gateway
    for name in APP_SERVICES:
        environment = config["services"][name]["environment"]
        assert environment["TRUSTED_PROXIES"] == str(nginx)
        assert environment["GUNICORN_FORWARDED_ALLOW_IPS"] == str(nginx)
    assert not any("ipv4_address" in str(s.get("networks")) for n, s in config["services"].items() if n != "nginx")


# --- the monitoring files (deploy/metrics-check.py, run by make deploy-check) ---


def _metrics_check():
    spec = importlib.util.spec_from_file_location("metrics_check", ROOT / "deploy" / "metrics-check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_metric_the_dashboard_and_the_rules_read_is_exposed():
    check = _metrics_check()
    known = check.exposed()
    assert {"otp_codes_refused_total", "outbox_oldest_pending_age_seconds", "flower_worker_online"} <= known
    for path in check.DASHBOARDS:
        assert check.dashboard_problems(path.name, json.loads(path.read_text()), known) == []


def test_the_dashboard_check_names_a_metric_nothing_exposes():
    check = _metrics_check()
    dashboard = {
        "panels": [{"title": "Typo", "targets": [{"expr": 'sum(rate(otp_codes_isued_total{region="RU"}[5m]))'}]}]
    }
    assert check.dashboard_problems("d.json", dashboard, check.exposed()) == [
        "d.json: panel 'Typo' reads otp_codes_isued_total, which nothing exposes"
    ]
    assert check.metric_names("histogram_quantile(0.95, sum by (le) (rate(a_bucket[5m]))) > on () group_left () b") == {
        "a_bucket",
        "b",
    }
