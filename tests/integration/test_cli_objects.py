"""export, delete's confirmation, get's groupings, tables, colour and --watch, run as real processes
against a real Redis."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.procs import cli_argv

OBJECTS = """\
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: podinfo
  namespace: flux-system
  labels:
    team: web
  annotations:
    note: "kept as written"
spec:
  interval: 1m
  url: https://github.com/stefanprodan/podinfo
  ref:
    branch: master
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: apps
  namespace: flux-system
spec:
  interval: 10m
  path: ./kustomize
  prune: true
  sourceRef:
    kind: GitRepository
    name: podinfo
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: other
  namespace: team-a
spec:
  interval: 5m
  url: https://git.example.test/org/other.git
"""


def _apply(cli, tmp_path: Path, text: str = OBJECTS) -> None:
    path = tmp_path / "objects.yaml"
    path.write_text(text)
    applied = cli("apply", "-f", str(path))
    assert applied.returncode == 0, applied.stderr


def test_export_round_trips_through_apply_unchanged(cli, ctx, tmp_path: Path) -> None:
    # Given objects applied, then applied again (generation 1, and one re-apply changes nothing)
    _apply(cli, tmp_path)
    before = ctx.client.hgetall(ctx.keys.catalog)

    # When every object of every namespace is exported
    exported = cli("export", "all", "-A")
    assert exported.returncode == 0, exported.stderr

    # Then the stream is the objects as written: one `---` document each, no status nor generation
    assert exported.stdout.count("---\n") == 3
    assert "status" not in exported.stdout and "generation" not in exported.stdout
    assert "team: web" in exported.stdout and "note: kept as written" in exported.stdout

    # And applying it back changes nothing, and exporting again gives the same bytes
    path = tmp_path / "exported.yaml"
    path.write_text(exported.stdout)
    again = cli("apply", "-f", str(path))
    assert again.returncode == 0, again.stderr
    assert [line.rsplit(" ", 1)[1] for line in again.stdout.splitlines()] == ["unchanged"] * 3
    assert cli("export", "all", "-A").stdout == exported.stdout
    # And the catalog holds the same objects, generation 1 still (only where they came from moved)
    after = ctx.client.hgetall(ctx.keys.catalog)
    assert _declared(after) == _declared(before)
    assert {json.loads(raw)["metadata"]["generation"] for raw in after.values()} == {1}


def _declared(catalog: dict[str, str]) -> dict[str, dict]:
    return {key: {k: v for k, v in json.loads(raw).items() if k != "source"} for key, raw in catalog.items()}


def test_export_of_one_kind_one_name_or_a_missing_one(cli, tmp_path: Path) -> None:
    _apply(cli, tmp_path)

    one = cli("export", "gitrepository", "podinfo", "-n", "flux-system")
    assert one.returncode == 0, one.stderr
    assert one.stdout.startswith("---\napiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\n")
    assert one.stdout.count("---\n") == 1

    kind = cli("export", "gitrepositories", "-A")
    assert kind.stdout.count("kind: GitRepository") == 2 and "Kustomization" not in kind.stdout

    missing = cli("export", "gitrepository", "nope", "-n", "flux-system")
    assert missing.returncode == 1 and "not found" in missing.stderr and missing.stdout == ""


def _delete(gt_env, *args: str, stdin: str | None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli_argv("delete", "gitrepository", "podinfo", "-n", "flux-system", *args),
        env=gt_env,
        input=stdin,
        stdin=subprocess.DEVNULL if stdin is None else None,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _exists(cli) -> bool:
    return cli("get", "gitrepository", "podinfo", "-n", "flux-system").returncode == 0


def test_delete_asks_and_only_yes_deletes(cli, gt_env, tmp_path: Path) -> None:
    _apply(cli, tmp_path)

    # "n" keeps the object
    kept = _delete(gt_env, stdin="n\n")
    assert kept.returncode == 1 and "Are you sure you want to delete" in kept.stderr
    assert "nothing deleted" in kept.stderr and _exists(cli)

    # stdin at its end (no terminal, nothing piped) keeps it too, and says how to delete anyway
    closed = _delete(gt_env, stdin=None)
    assert closed.returncode == 1 and "--silent" in closed.stderr and _exists(cli)

    # "y" deletes
    deleted = _delete(gt_env, stdin="y\n")
    assert deleted.returncode == 0, deleted.stderr
    assert "GitRepository/flux-system/podinfo deleted" in deleted.stdout and not _exists(cli)


def test_delete_silent_asks_nothing(cli, gt_env, tmp_path: Path) -> None:
    _apply(cli, tmp_path)
    deleted = _delete(gt_env, "--silent", stdin=None)
    assert deleted.returncode == 0, deleted.stderr
    assert "Are you sure" not in deleted.stderr and not _exists(cli)

    # A missing object is an error before any question
    missing = _delete(gt_env, stdin=None)
    assert missing.returncode == 1 and "not found" in missing.stderr and "Are you sure" not in missing.stderr


TABLE_OBJECTS = """\
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: podinfo
  namespace: flux-system
spec:
  interval: 1m
  suspend: true
  url: https://github.com/stefanprodan/podinfo
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: web
  namespace: flux-system
spec:
  interval: 5m
  suspend: true
  url: https://git.example.test/org/web.git
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: apps
  namespace: flux-system
spec:
  interval: 10m
  suspend: true
  path: ./kustomize
  prune: true
  sourceRef:
    kind: GitRepository
    name: podinfo
"""

CAUSE = (
    "failed to checkout and determine revision: unable to clone 'https://github.com/stefanprodan/podinfo': "
    "authentication required: the server refused the credentials of secret flux-system/podinfo-auth"
)


def _ready(status: str, reason: str, message: str, revision: str = "") -> dict:
    data: dict = {"conditions": [{"type": "Ready", "status": status, "reason": reason, "message": message}]}
    if revision:
        data["artifact"] = {"revision": revision}
    return data


def _table_catalog(cli, ctx, tmp_path: Path) -> None:
    """Suspended objects (no next run, so no clock in the table), one failing with a long cause."""
    from gitops_tasks.objects.model import ObjectRef

    _apply(cli, tmp_path, TABLE_OBJECTS)
    ctx.status.put(
        ObjectRef("GitRepository", "flux-system", "podinfo"), _ready("False", "GitOperationFailed", CAUSE)
    )
    ctx.status.put(
        ObjectRef("GitRepository", "flux-system", "web"),
        _ready(
            "True",
            "Succeeded",
            "stored artifact for revision 'main@sha1:0123456789abcdef0123'",
            "main@sha1:0123456789abcdef0123456789abcdef01234567",
        ),
    )


#: Expected tables, byte for byte (their lines are wider than this file's).
GOLDEN = Path(__file__).parent / "golden"


def test_table_fits_columns_and_wraps_the_cause_whole(cli, ctx, tmp_path: Path) -> None:
    _table_catalog(cli, ctx, tmp_path)
    table = cli("get", "gitrepositories", "-n", "flux-system", env={"COLUMNS": "120"})
    assert table.returncode == 0, table.stderr
    assert table.stdout == (GOLDEN / "get_gitrepositories_columns_120.txt").read_text()
    assert max(len(line) for line in table.stdout.splitlines()) <= 133  # a URL is never split
    # Every word of the cause is there: nothing is cut
    assert " ".join(CAUSE.split()) in " ".join(table.stdout.split())
    assert "podinfo-auth" in table.stdout and "…" not in table.stdout


def test_get_all_wide_shows_each_kind_with_objects_in_full(cli, ctx, tmp_path: Path) -> None:
    _table_catalog(cli, ctx, tmp_path)
    wide = cli("get", "all", "-n", "flux-system", "-o", "wide", env={"COLUMNS": "80"})
    assert wide.returncode == 0, wide.stderr
    # Kinds without objects (ImagePolicy, Alert, …) are left out
    assert wide.stdout == (GOLDEN / "get_all_wide.txt").read_text()


def test_get_sources_groupings(cli, ctx, tmp_path: Path) -> None:
    _table_catalog(cli, ctx, tmp_path)
    for group in ("all", "git"):
        sources = cli("get", "sources", group, "-n", "flux-system", "-o", "wide", env={"COLUMNS": "80"})
        assert sources.returncode == 0, sources.stderr
        expected = (GOLDEN / "get_all_wide.txt").read_text().split("\n\n")[0].removeprefix("GitRepository\n")
        assert sources.stdout == expected + "\n"
    one = cli("get", "sources", "git", "web", "-n", "flux-system")
    assert one.returncode == 0 and [line.split()[0] for line in one.stdout.splitlines()] == ["NAME", "web"]
    oci = cli("get", "sources", "oci")
    assert oci.returncode == 1 and "no OCIRepository kind in this version" in oci.stderr


def test_colour_on_a_terminal_only_and_never_with_no_color(cli, gt_env, ctx, tmp_path: Path) -> None:
    _table_catalog(cli, ctx, tmp_path)
    args = ("get", "gitrepositories", "-n", "flux-system")

    # In a pipe: no escape codes
    assert "\x1b[" not in cli(*args).stdout

    # On a terminal: READY False in red, True in green
    on_tty = _on_pty(cli_argv(*args), {**gt_env, "COLUMNS": "200"})
    assert "\x1b[31mFalse" in on_tty and "\x1b[32mTrue" in on_tty, on_tty

    # On a terminal with NO_COLOR: none
    assert "\x1b[" not in _on_pty(cli_argv(*args), {**gt_env, "COLUMNS": "200", "NO_COLOR": "1"})


def _on_pty(argv: list[str], env: dict[str, str]) -> str:
    """What ``argv`` prints with a pseudo-terminal as its stdout."""
    import os
    import pty

    leader, follower = pty.openpty()
    with subprocess.Popen(
        argv, env=env, stdout=follower, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
    ) as proc:
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the child closed its end
                break
            if not chunk:
                break
            chunks.append(chunk)
        proc.wait(timeout=60)
    os.close(leader)
    assert proc.returncode == 0
    return b"".join(chunks).decode()


def test_watch_prints_a_row_at_a_change_and_ends_quietly_on_ctrl_c(cli, gt_env, ctx, tmp_path: Path) -> None:
    import signal

    from gitops_tasks.objects.model import ObjectRef

    _table_catalog(cli, ctx, tmp_path)
    watch = subprocess.Popen(
        cli_argv("get", "gitrepositories", "-n", "flux-system", "--watch"),
        env={**gt_env, "COLUMNS": "300"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    with watch:
        assert watch.stdout is not None and watch.stderr is not None
        # Given the table as it is
        first = [watch.stdout.readline() for _ in range(3)]
        assert first[0].split()[:2] == ["NAME", "READY"] and "GitOperationFailed" in first[1]

        # When podinfo's status changes, a row for it alone follows
        ctx.status.put(
            ObjectRef("GitRepository", "flux-system", "podinfo"), _ready("True", "Succeeded", "fixed")
        )
        row = watch.stdout.readline()
        assert row.split()[:4] == ["podinfo", "True", "Suspended", "Succeeded"] and "fixed" in row

        # Then Ctrl-C ends it without a traceback
        watch.send_signal(signal.SIGINT)
        rest, errors = watch.communicate(timeout=60)
    assert watch.returncode == 130
    assert "Traceback" not in errors and "KeyboardInterrupt" not in errors, errors
    assert "web" not in rest  # the unchanged object was not printed again
