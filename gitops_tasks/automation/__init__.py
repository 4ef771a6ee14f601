"""Image update automation: rewrite marked image values in Git, commit and push (DESIGN §7).

The concern behind ImageUpdateAutomation, and Flux v1's annotation-driven automation:

- :mod:`.setters` (pure) rewrites the values marked ``# {"$imagepolicy": "ns:name"}`` byte-exactly;
  :mod:`.tree` applies it to the files under ``spec.update.path`` of a checkout.
- :mod:`.template` (pure) renders ``spec.git.commit.messageTemplate`` with Flux's template data
  through :mod:`.gotemplate`, a small Go ``text/template`` interpreter (never ``eval``).
- :mod:`.commit` checks a branch out into a temp dir, lets an edit run, commits and pushes, holding
  the branch lock and retrying a rejected push on a fresh checkout.
- :mod:`.reconcile` is ImageUpdateAutomation's reconciler: the one place that decides its
  reasons and messages.
- :mod:`.policies` (pure) picks the ImagePolicies an automation applies; :mod:`.locking` is the
  branch lock; :mod:`.signing` signs commits (SSH or GPG) with git itself.
- :mod:`.v1` (pure) reads Flux v1 workload annotations (``fluxcd.io/automated``, tag filters,
  ``fluxcd.io/locked``) and chooses tags; :mod:`.v1edit` (pure) edits images and annotations
  byte-exactly; :mod:`.release` runs fluxctl's ``release``/``automate``/``lock``... on a checkout.
- :mod:`.v1tree` applies v1 automation to the workloads under ``spec.update.path`` inside an
  ImageUpdateAutomation run (same commit as the setters); :mod:`.v1repos` (pure) decides which
  ImageRepository gives each image's tags and which ones an automation generates or retires.

Imports: ``gitops_tasks.objects``, the public API of ``gitops_tasks.sources`` (checkout, remotes,
``run_git``), ``gitops_tasks.store`` (the branch lock) and PyYAML; never ``tasks`` or Celery.
I/O: git subprocesses and files in temp checkouts (:mod:`.commit`, :mod:`.tree`, :mod:`.release`,
:mod:`.signing`, :mod:`.reconcile`, :mod:`.v1tree`), Redis (:mod:`.locking`); the other modules are pure.
"""
