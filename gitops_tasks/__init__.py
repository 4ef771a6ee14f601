"""gitops-tasks: a distributed GitOps engine (Flux's job as Celery tasks on a worker pool)."""

__version__ = "0.1.0"
