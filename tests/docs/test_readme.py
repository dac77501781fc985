"""The README's API walkthrough, run as a reader would paste it: bash against a live server."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"

pytestmark = pytest.mark.postgres


def walkthrough() -> str:
    """The README's shell block that starts with `API=` (the API walkthrough)."""
    blocks = re.findall(r"^```sh\n(.*?)^```$", README.read_text(), flags=re.S | re.M)
    (block,) = [b for b in blocks if b.startswith("API=")]
    return block


@pytest.fixture(autouse=True)
def _fake_delivery(settings):
    settings.OTP_FAKE_DELIVERY = True


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_the_readme_walkthrough_works_as_pasted(live_server):
    block = walkthrough()
    assert "http://127.0.0.1:8000/api/v1" in block
    script = block.replace("http://127.0.0.1:8000", live_server.url)
    done = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout.splitlines()
    assert '"confirmation_code"' in out[0]
    assert '"refresh"' in out[1]
    # The profile before and after the inviter's code, then the logout's status.
    assert '"my_inviter":null' in out[2]
    assert re.search(r'"my_inviter":"\+7999222\d{4}"', out[3]), out[3]
    assert out[-1] == "205"


def test_the_readme_keeps_the_latest_benchmark_table_and_leaves_the_history_to_docs():
    text = README.read_text()
    performance = text[text.index("## Performance") :]
    performance = performance[: performance.find("\n## ", 1) if "\n## " in performance[1:] else None]
    assert "make bench" in performance
    assert "| endpoint | req/s |" in performance
    assert "[docs/performance.md](docs/performance.md)" in performance
    assert len(performance) < 4000, "the benchmark history belongs in docs/performance.md"
    history = (README.parent / "docs" / "performance.md").read_text()
    assert "Optimisations made with it" in history
    assert "| endpoint | req/s |" in history
