"""The Celery floor of the delivery benchmark: a task that does nothing, run on the production app,
settings and worker options (acks_late, reject_on_worker_lost, no result store, events on). What
it reaches with the same worker processes is the most
any delivery that is one Celery task per message can reach on this machine. Only bench/run.py
starts a worker on it (`celery -A bench.floor worker`).
"""

from project.celery import app


@app.task(name="bench.floor.noop", acks_late=True, reject_on_worker_lost=True)
def noop(message_id: int) -> str:
    return "sent"
