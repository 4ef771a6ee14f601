"""The per-process memory of registry hosts that need no token."""

from __future__ import annotations

from gitops_tasks.registry.tokens import OpenHosts


def test_an_open_host_is_remembered_for_the_ttl_and_forgotten_on_a_401() -> None:
    now = [100.0]
    hosts = OpenHosts(ttl_s=300, clock=lambda: now[0])
    assert not hosts.is_open("r.example")

    hosts.answered("r.example")
    now[0] += 299
    assert hosts.is_open("r.example") and not hosts.is_open("other.example")
    now[0] += 2
    assert not hosts.is_open("r.example")

    hosts.answered("r.example")
    hosts.challenged("r.example")
    assert not hosts.is_open("r.example")


def test_a_host_that_answered_401_is_not_taken_for_open_until_the_ttl_passed() -> None:
    now = [100.0]
    hosts = OpenHosts(ttl_s=300, clock=lambda: now[0])
    hosts.challenged("mixed.example")
    hosts.answered("mixed.example")
    assert not hosts.is_open("mixed.example")
    now[0] += 301
    hosts.answered("mixed.example")
    assert hosts.is_open("mixed.example")
