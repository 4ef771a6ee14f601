"""Benchmarks: scripts that run gitops-tasks against real servers and write ``BENCHMARKS.md``.

Not part of the test suite. Each ``bench_*`` module measures one thing and is runnable alone
(``python -m benchmarks.bench_poll``); ``python -m benchmarks.run`` runs them all and rewrites
``BENCHMARKS.md``. Everything runs on 127.0.0.1 with private servers (Redis, ``git daemon``)
started in temporary directories and stopped by PID. Imports ``gitops_tasks``, ``beat_schedule``
and the process helpers of ``tests/``; does a lot of I/O (processes, sockets, files).
"""
