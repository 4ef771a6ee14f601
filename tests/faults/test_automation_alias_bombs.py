"""Alias bombs among the files an ImageUpdateAutomation rewrites: skipped, and the worker survives.

A real worker and beat scan a docker-registry, resolve an ImagePolicy and run an
ImageUpdateAutomation over a Git repository whose ``update.path`` holds a normal marked file and
two 10-line YAML files that expand to 9**9 nodes: one with a Setters marker, one a Flux v1
workload (``fluxcd.io/automated``). The project's semantics for a file that does not parse are to
skip it with a reason and still update the others (README, ImageUpdateAutomation), so: the run
commits the marked file only, the bombs stay byte-identical in Git, the status names each bomb
and the refusal, and the same worker process goes on. Its peak memory is read from ``/proc``
(``VmHWM``) and printed; the bound asserted is generous (expanding one bomb takes gigabytes).
"""

from __future__ import annotations

from pathlib import Path

from tests.e2e.test_image_automation_loop import objects, status
from tests.faults.test_alias_bombs import WORKER_PEAK_BOUND_MB, peak_rss_mb
from tests.gitservers import RemoteRepo, git
from tests.procs import wait_for
from tests.registryservers import DockerRegistry
from tests.unit.test_bounded_yaml import REFUSED, bomb, configmap_bomb

MARKER = '# {"$imagepolicy": "default:web"}'


def marked(image: str, tag: str) -> str:
    head = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\ndata:\n"
    return f"{head}  image: {image}:{tag} {MARKER}\n"


def v1_workload_bomb() -> str:
    """A Flux v1 automated Deployment whose ``spec`` is a bomb (the v1 pass reads it, not Setters)."""
    head = (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: boom\n"
        '  annotations: {fluxcd.io/automated: "true"}\nspec:\n'
    )
    return bomb(9, head=head, indent="  ")


def test_bombs_under_the_update_path_are_skipped_and_the_marked_file_is_still_committed(
    cli, ctx, procs, docker_registry: DockerRegistry, file_remote: RemoteRepo, image_path: str, tmp_path: Path
) -> None:
    # Given a registry with 1.0.0 and 1.1.0, and a repository with a marked file at 1.0.0 next to
    # a Setters bomb (it holds a marker, so the setters parse it) and a Flux v1 workload bomb
    image = f"{docker_registry.host}/{image_path}"
    docker_registry.push(image_path, "1.0.0", "1.1.0")
    setter_bomb = configmap_bomb(9) + f"  image: {image}:1.0.0 {MARKER}\n"
    files = {"apps/web.yaml": marked(image, "1.0.0"), "apps/bomb.yaml": setter_bomb}
    files["apps/v1-bomb.yaml"] = v1_workload_bomb()
    file_remote.commit(files, "fleet")
    initial = git("rev-parse", "main", cwd=file_remote.bare)
    (tmp_path / "objects.yaml").write_text(objects(image, file_remote.url))
    applied = cli("apply", "-f", str(tmp_path / "objects.yaml"))
    assert applied.returncode == 0, applied.stderr
    worker = procs("worker", "-c", "2")
    procs("beat")

    # When the policy has resolved 1.1.0 and the automation runs (the policy's change asks for a
    # run; the one asked for here runs after it, or is it)
    wait_for(lambda: status(ctx, "ImagePolicy", "web").get("latestImage") == f"{image}:1.1.0", what="1.1.0")
    run = cli("reconcile", "imageupdateautomation", "web", "--wait", "--timeout", "60s", timeout_s=90)
    assert run.returncode == 0, run.stdout + run.stderr
    head = wait_for(lambda: (sha := git("rev-parse", "main", cwd=file_remote.bare)) != initial and sha)

    # Then one commit on the previous tip touches the marked file only, exactly its value
    assert git("rev-parse", f"{head}^@", cwd=file_remote.bare) == initial
    assert git("diff", "--name-only", initial, head, cwd=file_remote.bare) == "apps/web.yaml"
    assert git("show", f"{head}:apps/web.yaml", cwd=file_remote.bare) + "\n" == marked(image, "1.1.0")
    # And the bombs are in Git as they were
    for path, text in files.items():
        if path != "apps/web.yaml":
            assert git("show", f"{head}:{path}", cwd=file_remote.bare) + "\n" == text, path
    # And the status names each bomb and the refusal, in its facts and its Ready message
    automated = status(ctx, "ImageUpdateAutomation", "web")
    assert automated["lastPushCommit"] == head
    skipped = {entry["path"]: entry["reason"] for entry in automated["skippedFiles"]}
    assert set(skipped) == {"apps/bomb.yaml", "apps/v1-bomb.yaml"}, skipped
    assert all(REFUSED in reason for reason in skipped.values()), skipped
    ready = next(c for c in automated["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True", ready
    for path in skipped:
        assert f"skipped {path}: not valid YAML (line 1: {REFUSED}" in ready["message"], ready
    events = cli("events", "--for", "ImageUpdateAutomation/web").stdout
    assert REFUSED in events, events

    # And the same worker stays up, within bounded memory, and serves the next run
    again = cli("reconcile", "imageupdateautomation", "web", "--wait", "--timeout", "60s", timeout_s=90)
    assert again.returncode == 0, again.stdout + again.stderr
    assert git("rev-parse", "main", cwd=file_remote.bare) == head, "nothing more to change"
    assert worker.proc.poll() is None, worker.log()[-3000:]
    peak = peak_rss_mb(worker.pid)
    print(f"worker peak RSS (VmHWM): {peak:.0f} MB")
    assert 0 < peak < WORKER_PEAK_BOUND_MB, worker.log()[-3000:]
