"""Registry scanning: the concern behind ImageRepository (DESIGN §6).

A scan normalises ``spec.image`` like docker does (:mod:`.names`), finds credentials
(:mod:`.auth`: the object's ``secretRef``, docker config files and credential helpers, a seam for
Kubernetes pull secrets), lists the repository's tags over the OCI distribution API following
``Link`` pagination with anonymous, basic or bearer-token auth (:mod:`.client`), drops the tags
``spec.exclusionList`` excludes and stores the rest compactly in Redis (:mod:`.tags`). Every request
goes through :mod:`.transport` (per-host circuit and backoff, request slots, rate limit) and every
answer is read in bounded memory (:mod:`.bodies`).
:mod:`.reconcile` is the one place that turns a scan into an
:class:`~gitops_tasks.objects.outcome.Outcome` (reasons and messages for ImageRepository);
everything below it raises :class:`.errors.RegistryError`.

Imports: ``gitops_tasks.objects``, ``gitops_tasks.store.keys`` (key names only), the public face of
``gitops_tasks.ratelimit`` (the :class:`~gitops_tasks.ratelimit.RateLimited` exception and the
host circuits; the limiter itself is passed in), ``requests``, ``docker.auth`` and ``redis``; never ``tasks``
or Celery. I/O: HTTP(S) to registries and token servers, Redis (bearer-token cache, tag lists),
reading secrets from a mounted Secret-volume directory and docker config files (which may run a
docker credential helper). :mod:`.names` and the parsers in :mod:`.client` are pure.
"""
