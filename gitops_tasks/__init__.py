"""gitops-tasks: a distributed GitOps engine (Flux's job as Celery tasks on a worker pool)."""

__version__ = "0.1.0"


def versions() -> dict[str, str]:
    """This installation's versions: gitops-tasks, Python, Celery, kombu, redis-py (read from the
    installed distributions: nothing is imported, so the CLI asks without loading Celery)."""
    import platform
    from importlib import metadata

    found = {"gitops-tasks": __version__, "python": platform.python_version()}
    for name, dist in (("celery", "celery"), ("kombu", "kombu"), ("redis-py", "redis")):
        try:
            found[name] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found
