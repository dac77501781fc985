"""Run calls at the same moment in real threads, each with its own PostgreSQL connection."""

import threading

from django.db import connection

JOIN_TIMEOUT_S = 120


def run_parallel(calls) -> list:
    """Start every call behind one barrier; return what each returned (or the exception it
    raised: the Django test client raises on a 500, so a server error shows up here)."""
    results = [None] * len(calls)
    barrier = threading.Barrier(len(calls))

    def worker(index, call):
        try:
            barrier.wait(timeout=JOIN_TIMEOUT_S)
            results[index] = call()
        except Exception as exc:
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i, c), daemon=True) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT_S)
    assert not any(t.is_alive() for t in threads), "a call hung (deadlock?)"
    return results


def errors(results) -> list:
    return [r for r in results if isinstance(r, BaseException)]
