"""Prometheus metrics and health endpoints of the engine's processes.

- :mod:`.instruments`: the metrics each worker process and beat record (Flux's
  ``gotk_reconcile_duration_seconds`` and our ``gitops_tasks_*``), with small helpers the tasks,
  the registry transport, the git runner and beat call. Recording never raises.
- :mod:`.catalog`: the collector that reads the catalog, status, schedule and broker queues from
  Redis at scrape time (``gotk_resource_info`` as kube-state-metrics produces it for Flux).
- :mod:`.exposition`: the exposition bytes (multiprocess mode under ``-P prefork``) and a WSGI app,
  for any HTTP server (the receiver's included).
- :mod:`.health`: the liveness heartbeat of a consumer or scheduling loop.
- :mod:`.server`: a tiny threaded HTTP server for ``/metrics``, ``/healthz`` and ``/readyz``.

Imports ``prometheus_client``, :mod:`gitops_tasks.store` and :mod:`gitops_tasks.objects`; never
Celery. A process that serves prefork children must call :func:`.exposition.use_multiprocess_dir`
before anything imports ``prometheus_client``.
"""
