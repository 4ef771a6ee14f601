"""``events`` as a real subprocess against a real Redis: the filters and the aligned table."""

from __future__ import annotations

import subprocess
import threading

from gitops_tasks.objects.model import ObjectRef
from gitops_tasks.tasks.context import Context
from tests.procs import cli_argv

#: A year and a bit since the epoch: every event below is decades old, "56y" or so (LAST SEEN is
#: wider than any such age, so the golden tables do not depend on the year they run in).
EVENTS = [
    (
        "Kustomization",
        "default",
        "apps",
        "info",
        "ReconciliationSucceeded",
        "Applied revision: main@sha1:0123",
    ),
    ("GitRepository", "default", "apps", "info", "NewArtifact", "stored artifact for revision 'main'"),
    (
        "Kustomization",
        "team-a",
        "web",
        "error",
        "BuildFailed",
        "kustomize build failed: accumulating resources from 'deploy': no such file or directory",
    ),
    ("GitRepository", "team-a", "web", "info", "Suspended", "GitRepository team-a/web suspended"),
]


def record(ctx: Context) -> None:
    """The events, at fixed times (a second apart, in 1970) so the table is the same on every run."""
    for i, (kind, ns, name, severity, reason, message) in enumerate(EVENTS):
        fields = {
            "kind": kind,
            "namespace": ns,
            "name": name,
            "severity": severity,
            "reason": reason,
            "message": message,
            "revision": "",
            "time": str(1000.0 + i),
        }
        ctx.client.xadd(ctx.keys.events, fields)


def years() -> str:
    import time

    return f"{int((time.time() - 1000) // (365 * 86400))}y"


def test_events_table_is_aligned_with_flux_columns(cli, ctx: Context) -> None:
    record(ctx)
    y = years()
    shown = cli("events", "-A", env={"COLUMNS": "200"})
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == (
        "NAMESPACE  LAST SEEN  TYPE     REASON                   OBJECT              MESSAGE\n"
        f"default    {y:<9}  Normal   ReconciliationSucceeded  Kustomization/apps  "
        "Applied revision: main@sha1:0123\n"
        f"default    {y:<9}  Normal   NewArtifact              GitRepository/apps  "
        "stored artifact for revision 'main'\n"
        f"team-a     {y:<9}  Warning  BuildFailed              Kustomization/web   kustomize build failed: "
        "accumulating resources from 'deploy': no such file or directory\n"
        f"team-a     {y:<9}  Normal   Suspended                GitRepository/web   "
        "GitRepository team-a/web suspended\n"
    )


def test_events_of_a_namespace_wrap_long_messages_under_their_column(cli, ctx: Context) -> None:
    record(ctx)
    y = years()
    # -n without --for: that namespace's events, no NAMESPACE column; a narrow terminal wraps MESSAGE
    shown = cli("events", "-n", "team-a", env={"COLUMNS": "100"})
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == (
        "LAST SEEN  TYPE     REASON       OBJECT             MESSAGE\n"
        f"{y:<9}  Warning  BuildFailed  Kustomization/web  kustomize build failed: accumulating resources\n"
        f"{'':52}from 'deploy': no such file or directory\n"
        f"{y:<9}  Normal   Suspended    GitRepository/web  GitRepository team-a/web suspended\n"
    )


def test_events_piped_keep_each_event_on_one_line(cli, ctx: Context) -> None:
    record(ctx)
    shown = cli("events", "-n", "team-a", env={"COLUMNS": ""})
    assert len(shown.stdout.splitlines()) == 3
    assert "no such file or directory" in shown.stdout.splitlines()[1]
    assert "\x1b" not in shown.stdout


def test_events_filters_by_kind_severity_and_types(cli, ctx: Context) -> None:
    record(ctx)

    def reasons(*args: str) -> list[str]:
        result = cli("events", *args)
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        column = lines[0].index("REASON") if lines else 0
        return [line[column:].split()[0] for line in lines[1:]]

    assert reasons("--kind", "kustomization") == ["ReconciliationSucceeded", "BuildFailed"]
    assert reasons("--for", "GitRepository") == ["NewArtifact", "Suspended"]
    assert reasons("--severity", "error") == ["BuildFailed"]
    assert reasons("--types", "Warning") == ["BuildFailed"]
    assert reasons("--types", "Normal", "-n", "team-a") == ["Suspended"]
    assert reasons("--kind", "ks", "--severity", "info", "-A") == ["ReconciliationSucceeded"]
    bad = cli("events", "--types", "Critical")
    assert bad.returncode != 0 and "Normal or Warning" in bad.stderr


def test_events_follow_prints_the_header_then_matching_events(cli, ctx: Context, gt_env) -> None:
    follower = subprocess.Popen(
        cli_argv("events", "--watch", "--kind", "Kustomization", "-n", "team-a"),
        env=gt_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # only the table on stdout is read
        text=True,
    )
    stop = threading.Event()
    try:
        assert follower.stdout is not None
        # When events arrive after it started (until it prints one: it may not be listening yet)
        other, wanted = (
            ObjectRef("GitRepository", "team-a", "web"),
            ObjectRef("Kustomization", "team-a", "web"),
        )

        def emit() -> None:
            while not stop.wait(0.3):
                ctx.events.emit(other, severity="info", reason="NewArtifact", message="not this one")
                ctx.events.emit(wanted, severity="error", reason="HealthCheckFailed", message="timed out")

        threading.Thread(target=emit, daemon=True).start()
        header = follower.stdout.readline()
        row = follower.stdout.readline()
    finally:
        stop.set()
        follower.terminate()
        follower.wait(10)
        if follower.stdout is not None:
            follower.stdout.close()
    assert header.split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert row.split()[1:] == ["Warning", "HealthCheckFailed", "Kustomization/web", "timed", "out"]
