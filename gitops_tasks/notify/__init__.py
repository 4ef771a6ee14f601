"""Notifications: Alerts match events, deliveries wait in a Redis outbox, providers send them.

The provider types (``providers``) are pure: an :class:`~gitops_tasks.notify.message.Event` and a
:class:`~gitops_tasks.notify.message.ProviderConfig` in, the HTTP requests to send out.
"""
