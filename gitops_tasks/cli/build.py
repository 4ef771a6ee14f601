"""``gitops-tasks build`` and ``gitops-tasks diff``: what a Kustomization sync would apply or change.

- ``build kustomization NAME [-n NS]``: check out the source's recorded revision and print, as a
  YAML stream in apply order, exactly the objects a sync would apply: the same build, kustomize
  fields, ``postBuild`` substitution and plan (``spec.targetNamespace``, default namespace, owner
  labels; objects ignored in Git left out). Which kinds are namespaced comes from the target
  cluster's discovery; with no cluster configured or reachable, from Kubernetes' built-in kinds and
  the CRDs in the build (a note on stderr says so).
- ``build PATH``: build a local directory (plain YAML or kustomize overlay) the same way.
- ``diff kustomization NAME [-n NS]``: server-side dry-run apply against the cluster, one unified
  diff per object that would be created, changed or pruned.
- ``--decryption-secret PATH`` (both): decrypt SOPS-encrypted files with these keys instead of the
  Secret ``spec.decryption`` names, so a user without access to it sees what a sync would apply:
  a directory laid out like a mounted Secret (one file per key, Flux's key names: ``*.agekey``,
  ``*.asc``, ``sops.vault-token``...) or one age or PGP key file. ``build PATH`` decrypts only
  with it, in a private copy of the repository. Secret values are printed as ``***`` unless
  ``--show-secrets``.

Exit status: build 0, or 1 on an error; diff 0 when nothing would change, 1 when something would,
2 on an error (as ``kubectl diff``).
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitops_tasks.cli import common

_KUSTOMIZATION = ("kustomization", "kustomizations", "ks")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``build`` and ``diff`` to the ``gitops-tasks`` sub-commands."""
    p = sub.add_parser(
        "build",
        help="print the manifests a Kustomization (or a local directory) builds",
        description="Print the objects `kustomization NAME` would apply, or build a local PATH.",
        epilog="examples:\n"
        "  gitops-tasks build kustomization podinfo -n flux-system\n"
        "  gitops-tasks build ./clusters/staging\n"
        "  gitops-tasks build ./clusters/staging --decryption-secret ~/.config/sops/age/keys.txt",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "target",
        metavar="kustomization NAME | PATH",
        help="a Kustomization in the catalog, or a local directory to build",
    )
    p.add_argument("name", nargs="?", help=argparse.SUPPRESS)
    p.add_argument("-n", "--namespace", help="the Kustomization's namespace (default: the default namespace)")
    p.add_argument("--show-secrets", action="store_true", help="print Secret values instead of ***")
    _decryption_argument(p)
    p.set_defaults(func=cmd_build)
    p = sub.add_parser(
        "diff",
        help="show what a sync of a Kustomization would change (exit 1 when something would)",
        description="Server-side dry-run apply of a Kustomization's objects; a unified diff per object.",
        epilog="examples:\n  gitops-tasks diff kustomization podinfo -n flux-system\n"
        "  gitops-tasks diff kustomization apps --decryption-secret ./sops-keys/",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("kind", metavar="kustomization", help="the word kustomization (or ks)")
    p.add_argument("name", metavar="NAME", help="the Kustomization's name")
    p.add_argument("-n", "--namespace", help="the Kustomization's namespace (default: the default namespace)")
    _decryption_argument(p)
    p.set_defaults(func=cmd_diff)


def _decryption_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--decryption-secret",
        metavar="PATH",
        type=Path,
        help="SOPS keys to decrypt with: a directory with one file per key (Flux's names: *.agekey, "
        "*.asc, sops.vault-token, sops.aws-kms, sops.azure-kv, sops.gcp-kms) or one age/PGP key file",
    )


#: Key names Flux reads from a decryption Secret that are not recognised by their suffix.
_CREDENTIAL_KEYS = ("sops.vault-token", "sops.aws-kms", "sops.azure-kv", "sops.gcp-kms")


def decryption_keys(path: Path) -> dict[str, str]:
    """The keys ``--decryption-secret PATH`` names (see the module docstring). Raises ``ValueError``."""
    if path.is_dir():
        keys = {
            item.name: item.read_text(encoding="utf-8")
            for item in sorted(path.iterdir())
            if item.is_file() and not item.name.startswith(".")
        }
        if not keys:
            raise ValueError(f"--decryption-secret {path}: the directory holds no key files")
        return keys
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"--decryption-secret {path}: cannot be read: {exc}") from None
    if path.name.endswith((".agekey", ".asc")) or path.name in _CREDENTIAL_KEYS:
        return {path.name: text}
    if "AGE-SECRET-KEY-" in text:
        return {"identity.agekey": text}
    if "BEGIN PGP PRIVATE KEY BLOCK" in text:
        return {"key.asc": text}
    raise ValueError(
        f"--decryption-secret {path}: neither an age identity nor an armored PGP private key; "
        "name the file after its Flux key (e.g. sops.vault-token) or pass a directory"
    )


def _git_root(path: Path) -> Path:
    try:
        out = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "--show-toplevel"],
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return path
    return Path(out.stdout.strip()) if out.returncode == 0 and out.stdout.strip() else path


def _print_stream(manifests: list[Any], *, mask_secrets: bool = False) -> None:
    from gitops_tasks.sync.manifests import dump

    objects = [m.obj for m in manifests]
    if mask_secrets:
        objects = [_masked(o) if o.get("kind") == "Secret" else o for o in objects]
    print("---\n".join(dump(o) for o in objects), end="")


def _masked(secret: dict[str, Any]) -> dict[str, Any]:
    """A Secret with every value replaced by ``***`` (values may come from substitution)."""
    out = dict(secret)
    for field in ("data", "stringData"):
        if isinstance(out.get(field), dict):
            out[field] = dict.fromkeys(out[field], "***")
    return out


@dataclass
class _AsManifest:
    obj: dict[str, Any]


@dataclass
class _Prepared:
    obj: Any
    manifests: list[Any]
    status: dict[str, Any]
    config: Any
    connect: Callable[[str | None], Any]
    home: Callable[[], Any]
    #: The build's gitops-tasks objects, as the sync stores them in the catalog (owned).
    owned: list[Any]
    catalog: Any


@contextmanager
def _kustomization(args: argparse.Namespace) -> Iterator[_Prepared]:
    """Yield what ``kustomization NAME`` builds, with its status and the sync configuration."""
    from gitops_tasks.objects.model import ObjectRef
    from gitops_tasks.objects.ownership import set_owner
    from gitops_tasks.sync import fleet
    from gitops_tasks.sync.inputs import make_reader
    from gitops_tasks.sync.pipeline import render
    from gitops_tasks.sync.source import checkout, resolve_source
    from gitops_tasks.tasks.sync import StoreLookup, connector, sync_config, sync_settings

    settings = common.settings()
    ctx = common.stores(settings)
    ref = ObjectRef("Kustomization", args.namespace or settings.default_namespace, args.name)
    obj = ctx.catalog.get(ref)
    if obj is None:
        raise LookupError(f"{ref} not found")
    sync = sync_settings(settings)
    config = sync_config(settings, sync)
    if args.decryption_secret is not None:
        keys = tuple(decryption_keys(args.decryption_secret).items())
        config = dataclasses.replace(config, decryption_keys=keys)
        if (obj.spec.get("decryption") or {}).get("provider") != "sops":
            print(
                f"note: {ref} has no spec.decryption (provider sops): --decryption-secret is not used, "
                "as a sync would not decrypt",
                file=sys.stderr,
            )
    connect = connector(sync)
    opened: list[Any] = []

    def home() -> Any:
        if not opened:
            opened.append(connect(None))
        return opened[0]

    source = resolve_source(obj, StoreLookup(ctx))
    try:
        with tempfile.TemporaryDirectory(prefix="gitops-tasks-build-") as tmp:
            root = checkout(
                source, Path(tmp) / "src", secrets_dir=config.secrets_dir, cache_dir=config.cache_dir
            )
            reader = make_reader(obj.namespace, secrets_dir=config.secrets_dir, home=home)
            engine, plain = fleet.split(render(obj, root, read=reader, config=config))
            owned = fleet.catalog_objects(
                engine,
                target_namespace=obj.spec.get("targetNamespace"),
                default_namespace=config.default_namespace,
            )
            for item in owned:
                set_owner(item, obj.ref)
            yield _Prepared(obj, plain, ctx.status.get(ref), config, connect, home, owned, ctx.catalog)
    finally:
        for cluster in opened:
            cluster.close()


def _applied(prepared: _Prepared) -> list[Any]:
    """The objects a sync of ``prepared`` would apply, in order (the sync's own plan)."""
    from gitops_tasks.sync.errors import ClusterError, KubeConfigError
    from gitops_tasks.sync.pipeline import plan_for, target_cluster
    from gitops_tasks.sync.plan import offline_scope

    obj, config, manifests = prepared.obj, prepared.config, prepared.manifests
    try:
        cluster = target_cluster(obj, connect=prepared.connect, home=prepared.home, config=config)
    except KubeConfigError as exc:
        problem = exc.message
    else:
        try:
            return plan_for(obj, manifests, scope=cluster.scope, config=config).objects
        except ClusterError as exc:
            problem = exc.message
        finally:
            cluster.close()
    print(
        f"note: no cluster to ask which kinds are namespaced ({problem}); "
        "using Kubernetes' built-in kinds and the CRDs in the build",
        file=sys.stderr,
    )
    return plan_for(obj, manifests, scope=offline_scope(manifests), config=config).objects


def cmd_build(args: argparse.Namespace) -> int:
    from gitops_tasks.sources import GitError
    from gitops_tasks.sync.build import Builder
    from gitops_tasks.sync.errors import SyncError

    try:
        if args.target.lower() in _KUSTOMIZATION and args.name:
            with _kustomization(args) as prepared:
                # The sync's order: catalog objects first, then the cluster's in apply order.
                stream = [_AsManifest(o.to_dict()) for o in prepared.owned]
                stream += _applied(prepared) if prepared.manifests else []
                _print_stream(stream, mask_secrets=not args.show_secrets)
            return 0
        if args.name:
            return common.fail(
                f"unexpected argument {args.name!r}; use `build kustomization NAME` or `build PATH`", 2
            )
        path = Path(args.target).resolve()
        if not path.is_dir():
            return common.fail(f"{args.target}: not a directory", 1)
        root = _git_root(path)
        if args.decryption_secret is None:
            _print_stream(Builder(root).build(str(path.relative_to(root))))
        else:
            manifests = _build_decrypted(root, path, decryption_keys(args.decryption_secret))
            _print_stream(manifests, mask_secrets=not args.show_secrets)
        return 0
    except (SyncError, GitError) as exc:
        return common.fail(exc.message, 1)
    except (LookupError, ValueError) as exc:
        return common.fail(str(exc), 1)


def _build_decrypted(root: Path, path: Path, keys: dict[str, str]) -> list[Any]:
    """Build ``path`` decrypted, in a private copy of the repository at ``root`` (files are
    decrypted in place for kustomize, and the user's own must never hold plaintext)."""
    from gitops_tasks.sync import decrypt
    from gitops_tasks.sync.build import Builder

    with tempfile.TemporaryDirectory(prefix="gitops-tasks-build-") as tmp:
        copy = Path(tmp) / "src"
        shutil.copytree(root, copy, symlinks=True, ignore=shutil.ignore_patterns(".git"))
        with decrypt.from_keys(keys, "--decryption-secret") as decryptor:
            builder = Builder(copy, decryptor=decryptor)
            return decryptor.documents(builder.build(str(path.relative_to(root))))


def cmd_diff(args: argparse.Namespace) -> int:
    from gitops_tasks.sources import GitError
    from gitops_tasks.store.catalog import OwnershipConflict
    from gitops_tasks.sync import fleet
    from gitops_tasks.sync import inventory as inv
    from gitops_tasks.sync.diff import diff_plan, diff_prune
    from gitops_tasks.sync.errors import SyncError
    from gitops_tasks.sync.pipeline import owner_of, plan_for, target_cluster

    if args.kind.lower() not in _KUSTOMIZATION:
        return common.fail(f"diff supports kustomization only, not {args.kind!r}", 2)
    try:
        with _kustomization(args) as prepared:
            obj, config = prepared.obj, prepared.config
            in_catalog = _catalog_changes(prepared)
            diffs = []
            previous = inv.from_status(prepared.status)
            if prepared.manifests or any(not fleet.is_catalog_entry(oid) for oid in previous):
                cluster = target_cluster(obj, connect=prepared.connect, home=prepared.home, config=config)
                try:
                    plan = plan_for(obj, prepared.manifests, scope=cluster.scope, config=config)
                    diffs = diff_plan(plan, cluster)
                    if obj.spec.get("prune"):
                        stale = inv.stale(previous, {**plan.inventory, **fleet.inventory(prepared.owned)})
                        stale = {oid: v for oid, v in stale.items() if not fleet.is_catalog_entry(oid)}
                        diffs += diff_prune(stale, cluster, owner_of(obj))
                finally:
                    cluster.close()
    except OwnershipConflict as exc:
        return common.fail(f"ownership conflict: {exc}", 2)
    except (SyncError, GitError) as exc:
        return common.fail(exc.message, 2)
    except (LookupError, ValueError) as exc:
        return common.fail(str(exc), 2)
    changed = [d for d in diffs if d.changes]
    for d in changed:
        print(d.text, end="" if d.text.endswith("\n") else "\n")
    for line in in_catalog:
        print(f"► {line} (catalog)")
    summary = ", ".join([*in_catalog, *(f"{d.id} {d.action}" for d in changed)]) or "no changes"
    print(f"{obj.ref}: {summary}", file=sys.stderr)
    return 1 if changed or in_catalog else 0


def _catalog_changes(prepared: _Prepared) -> list[str]:
    """What a sync would change in the catalog: ``Kustomization/ns/name created`` or
    ``configured`` (raises ``OwnershipConflict`` when another Kustomization manages one)."""
    from beat_schedule import entry_for

    applied = prepared.catalog.apply(
        prepared.owned, entry_for=entry_for, dry_run=True, owner=prepared.obj.ref
    )
    return [f"{a.ref.key} {a.action}" for a in applied if a.action != "unchanged"]
