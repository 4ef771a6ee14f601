"""The Redis broker transport: kombu's, with one client object per channel (gitops_tasks.broker)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import redis
from kombu import Connection

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


CONSUME_AND_DIE = """
import os, sys
from kombu import Connection
from gitops_tasks import broker
broker.register()
queue = Connection(sys.argv[1], transport_options={"global_keyprefix": sys.argv[2]}).SimpleQueue("vt")
queue.put({"n": 1})
queue.get(timeout=10)  # delivered, never acknowledged
os._exit(9)  # dies without closing: no restore at shutdown
"""


def test_a_dead_consumers_message_is_restored_under_the_key_prefix(gt_settings: Settings) -> None:
    # Given a consumer that took a message and died, with the broker keys under a prefix
    url, prefix = gt_settings.effective_redis_url(), "iso:"
    died = subprocess.run([sys.executable, "-c", CONSUME_AND_DIE, url, prefix], check=False, timeout=60)
    assert died.returncode == 9
    client = redis.Redis.from_url(url)
    assert client.hlen(f"{prefix}unacked") == 1 and client.llen(f"{prefix}vt") == 0

    # When another consumer sweeps after the visibility timeout, the message is back and delivered
    options = {"global_keyprefix": prefix, "visibility_timeout": 0}
    with Connection(url, transport_options=options) as connection:
        connection.default_channel.qos.restore_visible(num=10)
        message = connection.SimpleQueue("vt").get(timeout=10)
        assert message.payload == {"n": 1}
        message.ack()
    assert [k for k in client.scan_iter() if not k.startswith(prefix.encode())] == []
