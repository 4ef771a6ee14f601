"""Tasks sent by other systems with bad arguments fail with a clear message and a worker warning, and
nothing a worker logs about them (its tracebacks included) carries a credential."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery

from gitops_tasks.app import make_app
from gitops_tasks.settings import Settings
from tests.gitservers import FileRemotes
from tests.procs import wait_for

TOKEN = "ghp_workerT0kenValue42"


@pytest.fixture
def sender(gt_settings: Settings) -> Iterator[Celery]:
    app = make_app(gt_settings, set_as_current=False)
    yield app
    app.close()


def _declare(cli, tmp_path: Path, name: str) -> None:
    repo = FileRemotes(tmp_path / "remotes").start().new_repo(name, {"a.yaml": "a: 1\n"})
    (tmp_path / "repo.yaml").write_text(
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\n"
        f"metadata:\n  name: {name}\n  namespace: default\nspec:\n  interval: 1h\n  url: {repo.url}\n"
    )
    assert cli("apply", "-f", str(tmp_path / "repo.yaml")).returncode == 0


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        (
            {"kind": "GitRepostory", "namespace": "default", "name": "podinfo"},
            "argument kind='GitRepostory' is not a kind gitops-tasks reconciles; expected one of GitRep",
        ),
        (
            {"kind": "gitrepository", "namespace": "default", "name": "podinfo"},
            "kind='gitrepository' is not a kind gitops-tasks reconciles (did you mean 'GitRepository'?)",
        ),
        ({"kind": "Alert", "name": "podinfo"}, "argument kind='Alert' has no reconciler in this version"),
        ({"kind": "GitRepository", "namespace": "default"}, "argument name is missing"),
        (
            {"kind": "GitRepository", "namespace": "Default", "name": "podinfo"},
            "argument namespace: 'Default' is not a valid namespace",
        ),
        (
            {"kind": "GitRepository", "namespace": "default", "name": "podnfo", "reason": "ci"},
            "GitRepository default/podnfo is not in the catalog (requested with reason 'ci')",
        ),
    ],
)
def test_a_reconcile_with_bad_arguments_fails_and_the_worker_warns_naming_the_argument(
    cli, procs, sender: Celery, tmp_path: Path, kwargs: dict[str, str], expected: str
) -> None:
    _declare(cli, tmp_path, "podinfo")
    worker = procs("worker", "-c", "2")

    result = sender.send_task("gitops.reconcile", queue="priority", kwargs=kwargs)

    with pytest.raises(Exception, match=re.escape(expected)):
        result.get(timeout=60)
    assert result.state == "FAILURE"
    line = wait_for(
        lambda: next((ln for ln in worker.log().splitlines() if "WARNING" in ln and expected in ln), None),
        what="the worker's warning",
    )
    assert "gitops.reconcile: " in line


def test_a_per_queue_task_refuses_a_kind_it_does_not_reconcile(cli, procs, sender: Celery, tmp_path) -> None:
    _declare(cli, tmp_path, "podinfo")
    worker = procs("worker", "-c", "2")

    sender.send_task(
        "gitops.git.poll",
        queue="git",
        kwargs={"kind": "Kustomization", "namespace": "default", "name": "podinfo"},
    )

    wait_for(
        lambda: (
            "WARNING" in worker.log()
            and "gitops.git.poll: argument kind='Kustomization' is reconciled by gitops.sync.apply"
            in worker.log()
        ),
        what="the worker's warning",
    )


def test_a_credential_in_a_failing_task_never_reaches_the_worker_log(cli, procs, sender: Celery) -> None:
    # Given a worker, when a caller passes a repository URL with a token as the object's name
    worker = procs("worker", "-c", "2")
    url = f"https://deploy:{TOKEN}@git.example.test/org/fleet.git"
    sender.send_task(
        "gitops.git.poll", queue="git", kwargs={"kind": "GitRepository", "namespace": "default", "name": url}
    )

    # Then the task fails with a traceback in the log, masked like the warning before it
    wait_for(lambda: "Traceback (most recent call last)" in worker.log(), what="the failure's traceback")
    log = worker.log()
    assert TOKEN not in log
    assert "'https://deploy:***@git.example.test/org/fleet.git' is not a valid name" in log
    assert re.search(r"WARNING.*gitops.git.poll: argument name: 'https://deploy:\*\*\*@", log)
