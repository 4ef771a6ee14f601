"""``gitops-tasks policy latest``: try an ImagePolicy spec on a list of tags, locally (no Redis).

Exit status: 0 and the selected tag on stdout; 1 with the reason on stderr when the spec is
invalid, the tags file cannot be read or no tag matches; 2 for usage errors.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from gitops_tasks.cli import common

_EXAMPLE = """\
examples:
  gitops-tasks policy latest --spec '{"policy": {"semver": {"range": "^1.0"}}}' 1.0.0 1.2.0 2.0.0
  gitops-tasks policy latest --tags-file tags.txt --spec \\
    '{"policy": {"numerical": {"order": "asc"}},
      "filterTags": {"pattern": "^main-[a-f0-9]+-(?P<ts>[0-9]+)", "extract": "$ts"}}'
"""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``policy latest`` to the ``gitops-tasks`` sub-commands."""
    parser = sub.add_parser("policy", help="try an ImagePolicy spec on tags locally (no Redis)")
    commands = parser.add_subparsers(dest="policy_command", required=True, metavar="SUBCOMMAND")
    p = commands.add_parser(
        "latest",
        help="print the tag an ImagePolicy spec selects",
        description="Print the tag an ImagePolicy spec (policy and filterTags) selects from TAGs.",
        epilog=_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--spec", required=True, help="the ImagePolicy spec as JSON (imageRepositoryRef optional)")
    p.add_argument("--tags-file", metavar="FILE", help="read tags from FILE, one per line ('-': stdin)")
    p.add_argument("tags", nargs="*", metavar="TAG", help="a tag to choose from")
    p.set_defaults(func=cmd_policy_latest)


def _read_tags(path: str) -> list[str]:
    if path == "-":
        text = sys.stdin.read()
    else:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    return [line.strip() for line in text.splitlines() if line.strip()]


def cmd_policy_latest(args: argparse.Namespace) -> int:
    from gitops_tasks.objects import LoadError, load_text
    from gitops_tasks.policy import NoMatchingTag, PolicyError, UnorderableTag, build, unorderable_message

    try:
        spec: Any = json.loads(args.spec)
    except json.JSONDecodeError as exc:
        return common.fail(f"--spec is not valid JSON: {exc}")
    if not isinstance(spec, dict):
        return common.fail(f"--spec must be a JSON object (an ImagePolicy spec), got {args.spec!r}")
    tags = list(args.tags)
    if args.tags_file:
        try:
            tags += _read_tags(args.tags_file)
        except (OSError, UnicodeDecodeError) as exc:
            return common.fail(f"cannot read --tags-file {args.tags_file}: {exc}")
    elif not tags:
        print("error: no tags: give TAG arguments or --tags-file", file=sys.stderr)
        return 2
    document = {
        "apiVersion": "image.toolkit.fluxcd.io/v1",
        "kind": "ImagePolicy",
        "metadata": {"name": "cli"},
        "spec": {"imageRepositoryRef": {"name": "cli"}, **spec},
    }
    try:
        (obj,) = load_text(json.dumps(document), filename="--spec")
        print(build(obj.spec, where="--spec").latest(tags))
    except LoadError as exc:
        for error in exc.errors:
            print(f"error: {error}", file=sys.stderr)
        return 1
    except (PolicyError, NoMatchingTag) as exc:
        return common.fail(str(exc))
    except UnorderableTag as exc:
        return common.fail(unorderable_message("--spec", spec, exc))
    return 0
