"""Image automation commands: ``images update``, ``release``, ``automate``, ``deautomate``,
``lock``, ``unlock``.

``images update DIR --set NS:POLICY=IMAGE:TAG`` rewrites the marked values under a local
directory exactly as an ImageUpdateAutomation would (no Git, no Redis) and prints each change.

The workload commands are fluxctl's, working on Git instead of a cluster: they check out a
branch, edit the workload's YAML byte-exactly, commit and push (retrying a push that lost a race).
The repository is either a GitRepository from the catalog (``--source NAME [-n NS]``, needs
Redis; the branch lock is then shared with the workers) or a plain URL (``--repo URL [--branch
B] [--secret NAME]``, no Redis; the secret is read from the secrets dir as for a GitRepository
in namespace ``-n``). Workloads are named ``KIND/NAMESPACE/NAME`` (fluxctl's ``ns:kind/name``
works too) and searched under ``--path`` (default: the whole repository).

Exit status: 0 on success, including "nothing to change"; 1 when the command cannot be carried
out (with the reason on stderr); 2 for usage errors.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gitops_tasks.cli import common

_AUTHOR = re.compile(r"\s*(?P<name>[^<]*?)\s*<(?P<email>[^>]+)>\s*")
#: Commit author when ``--author`` is not given.
DEFAULT_CLI_AUTHOR = "gitops-tasks <gitops-tasks@localhost>"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the automation commands to the ``gitops-tasks`` sub-commands."""
    images = sub.add_parser("images", help="image automation on local files")
    commands = images.add_subparsers(dest="images_command", required=True, metavar="SUBCOMMAND")
    p = commands.add_parser(
        "update",
        help="rewrite values marked with $imagepolicy under DIR",
        description='Rewrite values marked # {"$imagepolicy": "NS:POLICY"} under DIR, as automation does.',
        epilog="example:\n"
        "  gitops-tasks images update ./apps --set flux-system:podinfo=ghcr.io/stefanprodan/podinfo:6.5.0"
        " --dry-run",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("dir", metavar="DIR", help="directory whose YAML files are rewritten in place")
    p.add_argument(
        "--set", dest="sets", action="append", required=True, metavar="NS:POLICY=IMAGE:TAG", help="repeatable"
    )
    p.add_argument("--dry-run", action="store_true", help="print the changes, write nothing")
    p.set_defaults(func=cmd_images_update)

    p = sub.add_parser(
        "release",
        help="set a workload's image in Git, commit and push (fluxctl release)",
        epilog="example:\n"
        "  gitops-tasks release --source fleet -w Deployment/default/podinfo"
        " --update-image ghcr.io/stefanprodan/podinfo:6.5.0 --dry-run",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _repo_args(p)
    p.add_argument(
        "--update-image", required=True, metavar="IMAGE:TAG", help="the image (with its new tag) to set"
    )
    p.add_argument("--force", action="store_true", help="release even if the workload is locked")
    p.add_argument("--dry-run", action="store_true", help="show what would change; commit nothing")
    p.set_defaults(func=cmd_release)

    for action, help_text in (
        ("automate", "turn on automated image updates for a workload"),
        ("deautomate", "turn off automated image updates for a workload"),
        ("lock", "lock a workload: no automation, no release without --force"),
        ("unlock", "unlock a workload"),
    ):
        p = sub.add_parser(
            action,
            help=help_text,
            epilog=f"example:\n  gitops-tasks {action} --source fleet -w Deployment/default/podinfo",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _repo_args(p)
        if action == "lock":
            p.add_argument("-m", "--message", help="why (fluxcd.io/locked_msg)")
            p.add_argument("--user", help="who (fluxcd.io/locked_user)")
        p.set_defaults(func=cmd_policy, action=action)


def _repo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-w", "--workload", required=True, metavar="KIND/NAMESPACE/NAME", help="the workload to change"
    )
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--source", metavar="NAME", help="a GitRepository in the catalog (needs Redis)")
    where.add_argument("--repo", metavar="URL", help="a git URL (no Redis needed)")
    p.add_argument("-n", "--namespace", default="default", help="of --source, and of --secret")
    p.add_argument("--branch", help="branch to check out and push (default: the source's, or HEAD's)")
    p.add_argument("--push-branch", help="push to this branch instead")
    p.add_argument("--secret", metavar="NAME", help="with --repo: the Secret holding credentials")
    p.add_argument("--path", default=".", help="directory in the repository holding the workloads")
    p.add_argument("--author", default=DEFAULT_CLI_AUTHOR, metavar="'NAME <EMAIL>'", help="commit author")
    p.add_argument("--commit-message", help="commit message (default: what was done)")


def cmd_images_update(args: argparse.Namespace) -> int:
    from gitops_tasks.automation.tree import UpdatePathError, update_tree
    from gitops_tasks.automation.v1 import split_image

    policies: dict[str, dict[str, str]] = {}
    for item in args.sets:
        setter, sep, image = item.partition("=")
        repository, tag, digest = split_image(image)
        if not sep or setter.count(":") != 1 or not all(setter.split(":")) or not tag:
            print(f"error: --set {item!r}: expected NAMESPACE:POLICY=IMAGE:TAG", file=sys.stderr)
            return 2
        policies[setter] = {"image": repository, "tag": tag, **({"digest": digest} if digest else {})}
    root = Path(args.dir)
    if not root.is_dir():
        return common.fail(f"{args.dir} is not a directory")
    try:
        result = update_tree(root, ".", policies, write=not args.dry_run)
    except UpdatePathError as exc:
        return common.fail(str(exc))
    for path, why in result.skipped:
        print(f"warning: skipped {path}: {why}", file=sys.stderr)
    for change in result.changes:
        print(change.describe())
    if not result.changes:
        print("no changes")
    return 0


def _author(text: str) -> Any:
    from gitops_tasks.automation.commit import Author

    match = _AUTHOR.fullmatch(text)
    if match is None:
        raise ValueError(f"--author {text!r}: expected 'NAME <EMAIL>'")
    return Author(match.group("name"), match.group("email"))


def _run_in_git(args: argparse.Namespace, edit: Callable[[Path], Any], read_only: bool) -> int:
    from gitops_tasks.automation.commit import Target, edit_and_push
    from gitops_tasks.automation.release import ReleaseError
    from gitops_tasks.objects.model import Object, ObjectRef
    from gitops_tasks.settings import Settings
    from gitops_tasks.sources import GitError

    try:
        settings = Settings.from_env()
        author = _author(args.author)
    except ValueError as exc:
        return common.fail(str(exc))
    lock = None
    if args.source:
        from gitops_tasks.automation.locking import redis_branch_lock
        from gitops_tasks.tasks.context import Context

        ctx = Context(settings)
        repository = ctx.catalog.get(ObjectRef("GitRepository", args.namespace, args.source))
        if repository is None:
            return common.fail(f"GitRepository {args.namespace}/{args.source} is not in the catalog")
        lock = redis_branch_lock(ctx.client, ctx.keys, owner=f"cli:{ctx.owner}")
    else:
        spec: dict[str, Any] = {"url": args.repo, "interval": "1m"}
        if args.secret:
            spec["secretRef"] = {"name": args.secret}
        repository = Object("source.toolkit.fluxcd.io/v1", "GitRepository", "cli", args.namespace, spec)
    ref = repository.spec.get("ref") or {}
    target = Target(
        branch=args.branch or ref.get("branch"),
        tag=None if args.branch else ref.get("tag"),
        push_branch=args.push_branch,
    )
    try:
        work = edit_and_push(
            repository,
            target,
            edit,
            author=author,
            message=lambda result: args.commit_message or result.description,
            secrets_dir=settings.resolved_secrets_dir,
            cache_dir=settings.resolved_cache_dir,
            lock=lock,
            read_only=read_only,
        )
    except (ReleaseError, ValueError) as exc:
        return common.fail(str(exc))
    except GitError as exc:
        return common.fail(f"{exc.reason}: {exc.message}")
    result = work.edit
    for detail in result.details:
        print(f"{result.workload}: {detail}")
    if work.commit:
        print(f"pushed commit {work.commit} to branch {work.push_branch}")
    elif not result.changed:
        print(f"{result.workload}: nothing to change")
    else:
        print("dry run: nothing committed")
    return 0


def cmd_release(args: argparse.Namespace) -> int:
    from gitops_tasks.automation.release import release

    def edit(root: Path) -> Any:
        return release(root, args.workload, args.update_image, path=args.path, force=args.force)

    return _run_in_git(args, edit, read_only=args.dry_run)


def cmd_policy(args: argparse.Namespace) -> int:
    from gitops_tasks.automation.release import set_policy

    def edit(root: Path) -> Any:
        return set_policy(
            root,
            args.workload,
            args.action,
            path=args.path,
            user=getattr(args, "user", None),
            message=getattr(args, "message", None),
        )

    return _run_in_git(args, edit, read_only=False)
