"""Attention notices: a target that keeps failing ("needs attention") and its recovery.

Queued in the outbox for the target's routes (or the default routes), like change alerts,
so they survive restarts and are retried when a route is down.
"""

from __future__ import annotations

from datetime import UTC, datetime

from watcher.config import Config, Target
from watcher.notify import queue_notice
from watcher.store import Store

__all__ = ["announce"]


def announce(config: Config, store: Store, target: Target, event: str,
             reason: str | None) -> None:
    """Queue a "needs attention" (event "broken") or a recovery notice."""
    if event == "broken":
        title = f"{target.title}: needs attention"
        body = (f"policy-watcher cannot check {target.title} ({target.url}) any more: "
                f"{reason}. No version is recorded while this lasts. Check the page and the "
                f"target's selectors (watcher check {target.id}).")
    else:
        title = f"{target.title}: checks work again"
        body = f"policy-watcher can check {target.title} ({target.url}) again."
    queue_notice(config, store, target, title, body, datetime.now(UTC))
