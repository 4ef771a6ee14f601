"""The whole image loop with real processes: a tag pushed to a registry ends as a commit in Git.

docker-registry → scan (every second) → ImagePolicy → ImageUpdateAutomation → commit and push over
``git daemon`` → immediate poll of the GitRepository. Worker and beat are real processes; the test
only pushes images and reads the bare repository, the statuses and the events.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.gitservers import GitDaemon, git
from tests.procs import wait_for
from tests.registryservers import DockerRegistry

#: The registry path of the automated image.
IMAGE_PATH = "org/web"
AUTHOR_NAME = "Image Bot"
AUTHOR_EMAIL = "image-bot@example.test"
#: A template of our own using the automation object and the list of changes.
MESSAGE_TEMPLATE = (
    "chore(images): update {{ .AutomationObject }}\n"
    "\n"
    "{{ range .Changed.Changes }}- {{ .OldValue }} -> {{ .NewValue }}\n{{ end }}"
)


def manifest(image: str, tag: str) -> str:
    """``apps/web.yaml`` with one marked value (at ``tag``) among lookalikes that must not change:
    a commented-out marker, unmarked copies of the image, a marker for an unknown policy, odd
    quoting and spacing, trailing spaces, two documents and a block scalar quoting a marker."""
    return (
        "# Deployment for the web tier.   \n"
        "---\n"
        "apiVersion: apps/v1\n"
        "kind: Deployment\n"
        "metadata:\n"
        '  name: "web"   # quoted name, odd spacing\n'
        "  annotations:\n"
        "    note: 'it''s \"quoted\", # not a comment'\n"
        f'    previous: "{image}:1.0.0"\n'
        "spec:\n"
        "  replicas:    2\n"
        "  template:\n"
        "    spec:\n"
        "      containers:\n"
        "        - name: web\n"
        f'          # image: {image}:0.9.0 # {{"$imagepolicy": "default:web"}}\n'
        f'          image: {image}:{tag} # {{"$imagepolicy": "default:web"}}\n'
        "          args: [\"--tag\", '1.0.0']\n"
        "        - name: sidecar\n"
        f"          image: '{image}:1.0.0'     # same image, no marker\n"
        f'        - {{name: other, image: "{image}:1.0.0"}} # {{"$imagepolicy": "default:unknown"}}\n'
        "---\n"
        "apiVersion: v1\n"
        "kind: ConfigMap\n"
        "metadata: {name: notes}\n"
        "data:\n"
        "  README: |\n"
        f'    image: {image}:1.0.0 # {{"$imagepolicy": "default:web"}}\n'
        "    a block scalar is data, not a field\n"
    )


def objects(image: str, url: str) -> str:
    template = "".join(f"        {line}\n" for line in MESSAGE_TEMPLATE.splitlines())
    return f"""\
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {{name: fleet, namespace: default}}
spec: {{url: '{url}', interval: 1m, ref: {{branch: main}}}}
---
apiVersion: image.toolkit.fluxcd.io/v1beta2
kind: ImageRepository
metadata: {{name: web, namespace: default}}
spec: {{image: '{image}', interval: 1s, timeout: 20s, insecure: true}}
---
apiVersion: image.toolkit.fluxcd.io/v1beta2
kind: ImagePolicy
metadata: {{name: web, namespace: default, labels: {{app: web}}}}
spec:
  imageRepositoryRef: {{name: web}}
  policy: {{semver: {{range: '>=1.0.0'}}}}
---
apiVersion: image.toolkit.fluxcd.io/v1beta2
kind: ImageUpdateAutomation
metadata: {{name: web, namespace: default}}
spec:
  interval: 1m
  sourceRef: {{kind: GitRepository, name: fleet}}
  policySelector: {{matchLabels: {{app: web}}}}
  git:
    checkout: {{ref: {{branch: main}}}}
    commit:
      author: {{name: {AUTHOR_NAME}, email: {AUTHOR_EMAIL}}}
      messageTemplate: |
{template}  update: {{path: ./apps, strategy: Setters}}
"""


def status(ctx: Any, kind: str, name: str) -> dict[str, Any]:
    raw = ctx.client.hget(ctx.keys.status, f"{kind}/default/{name}")
    return json.loads(raw) if raw else {}


def revision(ctx: Any) -> str:
    """The GitRepository's recorded revision (``main@sha1:…``)."""
    return str(status(ctx, "GitRepository", "fleet").get("artifact", {}).get("revision", ""))


def tip(bare: Path) -> str:
    return git("rev-parse", "refs/heads/main", cwd=bare)


def blob_id(text: str) -> str:
    """The object id git gives a file holding ``text``."""
    data = text.encode()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()  # noqa: S324 - git's object id


def raw_object(bare: Path, kind: str, rev: str) -> bytes:
    """``git cat-file KIND REV`` exactly as stored (the ``git`` helper strips its output)."""
    return subprocess.run(["git", "cat-file", kind, rev], cwd=bare, capture_output=True, check=True).stdout


def scan_time(ctx: Any) -> float:
    stamp = status(ctx, "ImageRepository", "web").get("lastScanResult", {}).get("scanTime", "")
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() if stamp else 0.0


def test_a_pushed_tag_is_committed_to_git_and_a_prerelease_is_not(
    cli,
    ctx,
    procs,
    docker_registry: DockerRegistry,
    git_daemon: GitDaemon,
    git_repo_name: str,
    tmp_path: Path,
) -> None:
    # Given a fleet repository whose apps/web.yaml marks one image value, served by git daemon
    image = f"{docker_registry.host}/{IMAGE_PATH}"
    before_text = manifest(image, "1.0.0")
    fleet = git_daemon.new_repo(
        git_repo_name, {"apps/web.yaml": before_text, "apps/other.yaml": "kind: List\n", "README.md": "# x\n"}
    )
    initial = tip(fleet.bare)
    # And the image at 1.0.0, a repository scanned every second, a semver policy, an automation
    docker_registry.push(IMAGE_PATH, "1.0.0")
    (tmp_path / "objects.yaml").write_text(objects(image, fleet.url))
    applied = cli("apply", "-f", str(tmp_path / "objects.yaml"))
    assert applied.returncode == 0, applied.stderr
    procs("worker", "-c", "4")
    procs("beat")

    # When the engine has settled on 1.0.0 (policy resolved, one automation run with nothing to do)
    wait_for(lambda: status(ctx, "ImagePolicy", "web").get("latestImage") == f"{image}:1.0.0", what="1.0.0")
    wait_for(lambda: revision(ctx) == f"main@sha1:{initial}", what="first poll")
    wait_for(
        lambda: status(ctx, "ImageUpdateAutomation", "web").get("observedPolicies"), what="automation ran"
    )
    assert tip(fleet.bare) == initial, "nothing to change at 1.0.0, so no commit"

    # And 1.1.0 is pushed to the registry
    pushed_at = time.monotonic()
    docker_registry.push(IMAGE_PATH, "1.1.0")

    # Then a commit arrives in the bare remote within a minute
    head = wait_for(
        lambda: (sha := tip(fleet.bare)) != initial and sha, timeout_s=60, interval_s=0.1, what="commit"
    )
    latency_s = time.monotonic() - pushed_at
    print(f"\ntag pushed → commit in the remote: {latency_s:.2f} s")
    # Its one parent is the previous tip and it touches apps/web.yaml only
    assert git("rev-parse", f"{head}^@", cwd=fleet.bare) == initial
    assert git("diff", "--name-only", initial, head, cwd=fleet.bare) == "apps/web.yaml"
    # And its diff is exactly the marked value, the file otherwise byte-identical
    after_text = manifest(image, "1.1.0")
    line = after_text.splitlines().index(
        f'          image: {image}:1.1.0 # {{"$imagepolicy": "default:web"}}'
    )
    diff = git("show", "--format=", "-U0", "--no-color", head, cwd=fleet.bare).splitlines()
    old_blob, new_blob = blob_id(before_text), blob_id(after_text)
    assert diff[0] == "diff --git a/apps/web.yaml b/apps/web.yaml", diff
    index, ids, mode = diff[1].split(" ")
    old_short, new_short = ids.split("..")
    assert (index, mode) == ("index", "100644") and old_blob.startswith(old_short)
    assert new_blob.startswith(new_short), (diff[1], new_blob)
    assert diff[2:] == [
        "--- a/apps/web.yaml",
        "+++ b/apps/web.yaml",
        f"@@ -{line + 1} +{line + 1} @@ spec:",  # git names the enclosing top-level key
        f'-          image: {image}:1.0.0 # {{"$imagepolicy": "default:web"}}',
        f'+          image: {image}:1.1.0 # {{"$imagepolicy": "default:web"}}',
    ]
    assert raw_object(fleet.bare, "blob", f"{head}:apps/web.yaml") == after_text.encode()
    # With the configured author and the rendered message, byte for byte (the template's last line
    # break, after {{ end }}, is kept: YAML's '|' ends the template with one)
    who = git("log", "-1", "--format=%an <%ae>|%cn <%ce>", head, cwd=fleet.bare)
    assert who == f"{AUTHOR_NAME} <{AUTHOR_EMAIL}>|{AUTHOR_NAME} <{AUTHOR_EMAIL}>"
    message = raw_object(fleet.bare, "commit", head).decode().split("\n\n", 1)[1]
    assert message == f"chore(images): update default/web\n\n- {image}:1.0.0 -> {image}:1.1.0\n\n", message

    # And the GitRepository (interval 1m, polled at start) recorded the new commit right after the push
    wait_for(
        lambda: revision(ctx) == f"main@sha1:{head}",
        timeout_s=15,
        what="GitRepository at the pushed commit",
    )
    automated = status(ctx, "ImageUpdateAutomation", "web")
    assert automated["lastPushCommit"] == head
    # And the events show the policy update, the push and the new artifact
    events = cli("events", "--limit", "200").stdout
    assert f"Latest image tag for '{image}' updated from 1.0.0 to 1.1.0" in events, events
    assert f"pushed commit '{head}' to branch 'main'" in events, events
    assert f"stored artifact for revision 'main@sha1:{head}'" in events, events

    # When a prerelease is pushed (excluded by '>=1.0.0')
    docker_registry.push(IMAGE_PATH, "1.2.0-rc.1")
    wait_for(
        lambda: status(ctx, "ImageRepository", "web").get("lastScanResult", {}).get("tagCount") == 3,
        what="the prerelease scanned",
    )
    seen = scan_time(ctx)
    wait_for(lambda: scan_time(ctx) >= seen + 3, timeout_s=15, what="three more scans")
    # Then the policy stays at 1.1.0 and no commit arrives, even when the automation runs now
    assert status(ctx, "ImagePolicy", "web")["latestImage"] == f"{image}:1.1.0"
    manual = cli("reconcile", "imageupdateautomation", "web", "--wait", "--timeout", "30s")
    assert manual.returncode == 0, manual.stdout + manual.stderr
    assert tip(fleet.bare) == head
    assert "repository up-to-date" in status(ctx, "ImageUpdateAutomation", "web")["conditions"][0]["message"]
