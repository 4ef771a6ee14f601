"""The Redis clients every process builds time out, so a Redis that stops answering is an outage."""

from __future__ import annotations

from gitops_tasks.settings import DEFAULT_REDIS_SOCKET_TIMEOUT_S, Settings
from gitops_tasks.store.client import connect, connect_bytes


def test_commands_and_connection_attempts_time_out_as_configured() -> None:
    settings = Settings.from_env(
        {"GITOPS_TASKS_REDIS_URL": "redis://127.0.0.1:1/0", "GITOPS_TASKS_REDIS_SOCKET_TIMEOUT_S": "1.5"}
    )
    for client in (connect(settings), connect_bytes(settings)):
        options = client.connection_pool.connection_kwargs
        assert (options["socket_timeout"], options["socket_connect_timeout"]) == (1.5, 1.5)
    assert connect(settings).connection_pool.connection_kwargs["decode_responses"] is True
    assert DEFAULT_REDIS_SOCKET_TIMEOUT_S == Settings().redis_socket_timeout_s == 5.0
