"""Attention notices: a target that keeps failing ("needs attention") and its recovery.

Sent once per event to the target's routes (or the default routes) through Apprise. The
route URLs carry credentials: they are never logged, only the route names.
"""

from __future__ import annotations

import logging

import apprise

from watcher.config import Config, Route, Target

__all__ = ["announce", "routes_for"]

log = logging.getLogger("watcher.attention")


def routes_for(config: Config, target: Target) -> list[Route]:
    names = target.notify or tuple(name for name, r in config.routes.items() if r.default)
    return [config.routes[name] for name in names if name in config.routes]


def announce(config: Config, target: Target, event: str, reason: str | None) -> bool:
    """Send a broken/recovered notice; returns True when every route accepted it."""
    if event == "broken":
        title = f"{target.title}: needs attention"
        body = (f"policy-watcher cannot check {target.title} ({target.url}) any more: "
                f"{reason}.\nNo version is recorded while this lasts. Check the page and the "
                f"target's selectors (watcher check {target.id}).")
    else:
        title = f"{target.title}: checks work again"
        body = f"policy-watcher can check {target.title} ({target.url}) again."
    delivered = True
    for route in routes_for(config, target):
        sender = apprise.Apprise()
        for url in route.urls:
            sender.add(url)
        if route.config:
            loaded = apprise.AppriseConfig()
            loaded.add(route.config)
            sender.add(loaded)
        if not sender.notify(title=title, body=body):
            log.warning("attention notice to route %s failed", route.name)
            delivered = False
    return delivered
