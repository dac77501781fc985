import time

import pytest


def wait_for(predicate, timeout=15.0, interval=0.05):
    """Poll until predicate() is truthy; return its value or fail. Waiting, not timing."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"condition not met within {timeout} s")
