"""The Redis broker transport: kombu's, with one client object per channel (gitops_tasks.broker)."""

from __future__ import annotations

from dataclasses import replace

from gitops_tasks.app import make_app
from gitops_tasks.broker import Transport
from gitops_tasks.settings import Settings


def test_redis_brokers_use_the_transport_and_others_keep_kombus() -> None:
    settings = Settings(redis_url="redis://127.0.0.1:6379/0")
    with make_app(settings, set_as_current=False).connection() as connection:
        assert connection.transport_cls == "redis" and connection.transport.__class__ is Transport
        # The URI keeps its scheme: Flower picks its broker client (Broker tab) by it.
        assert connection.as_uri().startswith("redis://")
    amqp = replace(settings, broker_url="amqp://guest@127.0.0.1:5672//")
    with make_app(amqp, set_as_current=False).connection() as connection:
        assert connection.as_uri().startswith("amqp://")
    tls = replace(settings, broker_url="rediss://127.0.0.1:6380/0")
    with make_app(tls, set_as_current=False).connection() as connection:
        assert not isinstance(connection.transport, Transport)


def test_a_channel_reuses_one_client_until_its_pool_changes(gt_settings: Settings) -> None:
    app = make_app(gt_settings, set_as_current=False)
    with app.connection_for_write() as connection:
        assert isinstance(connection.transport, Transport)
        channel = connection.default_channel
        first = channel._create_client()
        assert channel._create_client() is first
        assert channel._create_client(asynchronous=True) is not first
        channel._pool = None  # what kombu does when it drops the pool
        assert channel._create_client() is not first


def test_tasks_round_trip_through_the_transport(gt_settings: Settings) -> None:
    app = make_app(gt_settings, set_as_current=False)
    with app.connection_for_write() as connection:
        queue = connection.SimpleQueue("transport-test")
        for i in range(20):
            queue.put({"n": i}, serializer="json")
        got = []
        for _ in range(20):
            message = queue.get(timeout=5)
            got.append(message.payload["n"])
            message.ack()
        queue.close()
    assert got == list(range(20))
