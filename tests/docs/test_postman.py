"""The Postman collection (docs/postman/): made from schema.yaml by `make postman`, and its
walkthrough run by newman against a live server. The npm tools come from docs/postman/package.json
(`npm ci --prefix docs/postman`, which .ci/run does)."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

POSTMAN = Path(__file__).resolve().parents[2] / "docs" / "postman"
NEWMAN = POSTMAN / "node_modules" / ".bin" / "newman"

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        not (NEWMAN.exists() and shutil.which("node")) and os.environ.get("REQUIRE_SERVICES") != "1",
        reason="needs node and docs/postman/node_modules: npm ci --prefix docs/postman",
    ),
]


def test_the_committed_collection_is_what_make_postman_makes_from_schema_yaml(tmp_path):
    done = subprocess.run(
        ["node", str(POSTMAN / "build.js"), str(POSTMAN.parents[1] / "schema.yaml"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for name in ("collection.json", "environment.json"):
        assert (tmp_path / name).read_text() == (POSTMAN / name).read_text(), f"run `make postman` ({name})"


def test_the_collection_holds_every_operation_of_the_schema():
    import yaml

    schema = yaml.safe_load((POSTMAN.parents[1] / "schema.yaml").read_text())
    documented = {(m.upper(), p) for p, ops in schema["paths"].items() for m in ops}

    def requests(items):
        for item in items:
            yield from requests(item["item"]) if "item" in item else [item["request"]]

    collection = json.loads((POSTMAN / "collection.json").read_text())
    folders = {folder["name"]: folder["item"] for folder in collection["item"]}
    found = set()
    for request in requests(folders["All operations"]):
        route = "/" + "/".join("{" + s[1:] + "}" if s.startswith(":") else s for s in request["url"]["path"])
        found.add((request["method"], route))
    assert found == documented
    steps = [item["name"] for item in folders["Walkthrough"]]
    assert len(steps) == 10 and all(any(e["listen"] == "test" for e in i["event"]) for i in folders["Walkthrough"])


@pytest.fixture(autouse=True)
def _fake_delivery(settings):
    settings.OTP_FAKE_DELIVERY = True


def test_newman_runs_the_walkthrough_against_a_live_server(live_server, tmp_path):
    report = tmp_path / "newman.json"
    done = subprocess.run(
        [
            str(NEWMAN),
            "run",
            str(POSTMAN / "collection.json"),
            "--environment",
            str(POSTMAN / "environment.json"),
            "--env-var",
            f"baseUrl={live_server.url}",
            "--folder",
            "Walkthrough",
            "--reporters",
            "cli,json",
            "--reporter-json-export",
            str(report),
            "--color",
            "off",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    stats = json.loads(report.read_text())["run"]["stats"]
    assert stats["requests"] == {"total": 10, "pending": 0, "failed": 0}
    assert stats["assertions"]["failed"] == 0
    assert stats["assertions"]["total"] == 11
