"""kombu's Redis transport, with one redis client per channel.

kombu's Redis channel builds a new `redis.Redis` for every command it sends outside its event
loop: each publish (a signup), each ack and each task event (a worker). Building one copies
~170 response callbacks and cost about half of a publish (bench/: apply_async 1.0 -> 0.5 ms).
A client holds no connection of its own (every command borrows one from the channel's pool)
and is safe to share, so the channel keeps one.

Installed as the transport's channel class (project/celery.py) rather than selected with
broker_transport: that would turn the broker URL Flower reads into "project.broker:Transport://".
"""

from kombu.transport import redis


class Channel(redis.Channel):
    _shared_client = None

    def _create_client(self, asynchronous=False):
        if asynchronous:  # the event loop's client, built once already (Channel.client)
            return super()._create_client(asynchronous=True)
        if self._shared_client is None:
            self._shared_client = super()._create_client()
        return self._shared_client


def redis_clients_shared() -> None:
    redis.Transport.Channel = Channel
