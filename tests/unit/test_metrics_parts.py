"""Pure parts of the metrics: heartbeats, the health server's answers, kube-state-metrics labels,
Flux's buckets, JSON log lines (masked)."""

from __future__ import annotations

import io
import itertools
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gitops_tasks.logsetup import JsonFormatter, add_log_fields, log_fields, use_format
from gitops_tasks.metrics.catalog import resource_info_labels
from gitops_tasks.metrics.exposition import process_metrics, wsgi_app
from gitops_tasks.metrics.health import Heartbeat
from gitops_tasks.metrics.instruments import FLUX_RECONCILE_BUCKETS, git_operation
from gitops_tasks.metrics.serve import _heartbeat_check
from gitops_tasks.metrics.server import MetricsServer
from gitops_tasks.objects.model import Object
from gitops_tasks.redact import RedactingFormatter


def test_heartbeat_is_alive_while_starting_ready_once_touched_and_stale_after_the_threshold() -> None:
    beat = Heartbeat("loop", stale_s=10, started_at=100.0)
    assert beat.alive(now=105.0) and not beat.ready(now=105.0)  # starting up
    assert not beat.alive(now=111.0)  # never touched within the threshold
    beat.touch(role="leader")
    touched = beat.touched_at
    assert touched is not None
    assert beat.alive(now=touched + 9.9) and beat.ready(now=touched + 9.9)
    assert not beat.alive(now=touched + 10.1) and not beat.ready(now=touched + 10.1)
    report = beat.report(now=touched + 3)
    assert report["role"] == "leader" and report["heartbeatAgeSeconds"] == 3.0


@pytest.fixture
def served() -> Iterator[tuple[MetricsServer, Heartbeat]]:
    beat = Heartbeat("scheduler", stale_s=5)
    server = MetricsServer(
        "127.0.0.1",
        0,
        metrics=process_metrics,
        checks={
            "/healthz": _heartbeat_check(beat, ready=False),
            "/readyz": _heartbeat_check(beat, ready=True),
        },
    ).start()
    yield server, beat
    server.stop()


def _get(server: MetricsServer, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}{path}", timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_health_endpoints_answer_503_once_the_heartbeat_is_stale(
    served: tuple[MetricsServer, Heartbeat],
) -> None:
    server, beat = served
    assert _get(server, "/readyz")[0] == 503  # not touched yet: not ready
    beat.touch(role="standby")
    assert _get(server, "/healthz")[0] == 200 and _get(server, "/readyz")[0] == 200
    code, body = _get(server, "/readyz?role=leader")
    assert code == 503 and json.loads(body)["role"] == "standby"
    assert beat.touched_at is not None
    beat.touched_at -= 6  # the loop last ran 6 s ago; the threshold is 5 s
    code, body = _get(server, "/healthz")
    assert code == 503 and json.loads(body)["alive"] is False
    assert _get(server, "/nothing")[0] == 404
    code, text = _get(server, "/metrics")
    assert code == 200 and "gotk_reconcile_duration_seconds" in text


def test_flux_reconcile_buckets_are_go_exponential_buckets_range() -> None:
    assert len(FLUX_RECONCILE_BUCKETS) == 10
    assert FLUX_RECONCILE_BUCKETS[0] == pytest.approx(0.01) and FLUX_RECONCILE_BUCKETS[-1] == pytest.approx(
        1800
    )
    ratios = {round(b / a, 9) for a, b in itertools.pairwise(FLUX_RECONCILE_BUCKETS)}
    assert len(ratios) == 1


def _obj(kind: str, api: str, spec: dict[str, object]) -> Object:
    return Object(api, kind, "app", "team-a", spec)


def test_resource_info_labels_follow_kube_state_metrics_for_flux() -> None:
    ks = _obj(
        "Kustomization",
        "kustomize.toolkit.fluxcd.io/v1",
        {"sourceRef": {"kind": "GitRepository", "name": "repo"}},
    )
    status = {"conditions": [{"type": "Ready", "status": "True"}], "lastAppliedRevision": "main@sha1:abc"}
    assert resource_info_labels(ks, status) == {
        "customresource_group": "kustomize.toolkit.fluxcd.io",
        "customresource_kind": "Kustomization",
        "customresource_version": "v1",
        "exported_namespace": "team-a",
        "name": "app",
        "ready": "True",
        "revision": "main@sha1:abc",
        "source_name": "repo",
    }
    repo = _obj(
        "GitRepository",
        "source.toolkit.fluxcd.io/v1",
        {"url": "https://bot:tok3n-xyz@git.example/a.git", "suspend": True},
    )
    labels = resource_info_labels(repo, {})
    assert labels["url"] == "https://bot:***@git.example/a.git"
    assert labels["suspended"] == "true" and "ready" not in labels and "revision" not in labels
    policy = _obj(
        "ImagePolicy", "image.toolkit.fluxcd.io/v1beta2", {"imageRepositoryRef": {"name": "podinfo"}}
    )
    assert resource_info_labels(policy, {})["source_name"] == "podinfo"


def test_git_operation_counts_the_failure_reason() -> None:
    class Failed(Exception):
        reason = "AuthenticationFailed"

    with pytest.raises(Failed), git_operation("ls-remote", "ssh"):
        raise Failed("denied")
    text = process_metrics().decode()
    found = [
        s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "gitops_tasks_git_operations_total"
        and s.labels == {"operation": "ls-remote", "transport": "ssh", "result": "AuthenticationFailed"}
    ]
    assert found and found[0] >= 1


def test_wsgi_app_serves_the_exposition() -> None:
    calls: list[tuple[str, list[tuple[str, str]]]] = []
    body = b"".join(wsgi_app(lambda: b"x 1\n")({}, lambda status, headers: calls.append((status, headers))))
    assert body == b"x 1\n" and calls[0][0] == "200 OK"
    assert dict(calls[0][1])["Content-Type"].startswith("text/plain; version=")


def test_json_log_lines_carry_task_fields_and_a_masked_traceback() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    use_format("json", [handler])
    assert isinstance(handler.formatter, RedactingFormatter) and isinstance(
        handler.formatter.inner, JsonFormatter
    )
    logger = logging.getLogger("test.jsonlog")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with log_fields(task_id="t-1", object="GitRepository/default/app"):
            add_log_fields(revision="main@sha1:abc")
            try:
                raise RuntimeError("clone of https://bot:pa55word-123@git.example/a.git failed")
            except RuntimeError:
                logger.exception("reconcile of %s failed", "https://bot:pa55word-123@git.example/a.git")
        logger.warning("outside")
    finally:
        logger.removeHandler(handler)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert "pa55word" not in stream.getvalue()
    assert first["task_id"] == "t-1" and first["object"] == "GitRepository/default/app"
    assert first["revision"] == "main@sha1:abc" and first["level"] == "ERROR"
    assert "https://bot:***@git.example/a.git" in first["message"]
    assert "RuntimeError: clone of https://bot:***@git.example" in first["exception"]
    assert "task_id" not in second and second["message"] == "outside"


def test_a_task_run_inside_the_loop_keeps_the_solo_heartbeat_fresh() -> None:
    solo = Heartbeat("consumer", stale_s=10, inline_tasks=True)
    solo.task_started()  # a long task holds the loop (Celery's solo pool)
    touched = solo.touched_at
    assert touched is not None and solo.alive(now=touched + 600)
    solo.task_finished()
    finished = solo.touched_at
    assert finished is not None and not solo.alive(now=finished + 11)
    threads = Heartbeat("consumer", stale_s=10)  # threads/prefork: tasks never hold the loop
    threads.touch()
    threads.task_started()
    assert threads.touched_at is not None and not threads.alive(now=threads.touched_at + 11)


def test_building_the_cli_imports_no_prometheus_client() -> None:
    """A worker chooses its multiprocess directory before prometheus_client is imported; the
    parser (every command module) must not import it first."""
    import subprocess
    import sys

    code = (
        "import sys; from gitops_tasks.cli import build_parser; build_parser(); "
        "print('prometheus_client' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
