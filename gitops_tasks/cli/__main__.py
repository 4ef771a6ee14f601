"""``python -m gitops_tasks.cli``: the ``gitops-tasks`` command."""

import sys

from gitops_tasks.cli import main

sys.exit(main())
