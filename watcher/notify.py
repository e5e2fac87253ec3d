"""Notifications: alerts queued in the outbox with their version, delivered through Apprise.

The check pipeline only calls `queue_change` inside its transaction, so a version and the
alerts it owes are committed together. `deliver_pending` (used by `watcher check`, `watcher
outbox retry` and the daemon) renders each alert for each route — HTML for e-mail, Markdown
for Slack, plain text elsewhere — sends it, and records every attempt: a destination (a URL
of the route's `urls`, or a service its Apprise configuration file defines) that accepted a
message is never sent it again, a failing one is retried with exponential backoff, and one
failing route never holds up another. A sender claims the alerts it sends (a lease), so two
processes delivering at once never both send one. A route with a `digest` schedule gets its
alerts queued until the next digest time, then all of them in one message. Apprise URLs carry
credentials and are never logged.
"""

from __future__ import annotations

import hashlib
import html
import logging
import os
import re
import secrets
import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import apprise

from watcher.apprise_url import redact, redact_text
from watcher.config import Config, Route, Target
from watcher.models import Diff
from watcher.render import changes_as_html, diff_as_markdown, diff_as_text
from watcher.schedule import parse_digest, parse_timezone
from watcher.significance import topic_label
from watcher.store import Delivery, Store

__all__ = ["Message", "queue_change", "queue_notice", "deliver_pending", "render_change",
           "render_digest", "routes_for", "send_test"]

MAX_CHANGES = 12
MAX_DIGEST_CHANGES = 5
"""Changed clauses shown per alert in a digest; the rest are counted."""
MAX_ATTEMPTS = 12
LEASE = timedelta(minutes=15)
"""How long a sender holds the alerts it is sending. A claim outlives a sender that died on
another host for this long; one that died on this host is taken over at once."""
BACKOFF_BASE = timedelta(minutes=1)
BACKOFF_CAP = timedelta(hours=6)
REASON_LENGTH = 400
DETAIL_RECORDS = ("Socket Exception", "Response Details")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_CAPTURE = threading.Lock()
"""Apprise logs to one logger: one send at a time, so a reason is never another URL's."""
_PROCESS = secrets.token_hex(4)
"""Tells this process's claims from those of a dead one that had the same pid."""
HTML_SCHEMES = ("mailto", "mailtos", "email")
MARKDOWN_SCHEMES = ("slack", "discord", "mmost", "mmosts", "msteams", "matrix", "matrixs",
                    "tgram", "rocket", "rockets", "zulip")


@dataclass(frozen=True)
class Message:
    title: str
    text: str
    markdown: str
    html: str


@dataclass(frozen=True)
class Destination:
    """One service a route sends to: a URL of its `urls`, or one its Apprise configuration
    file defines."""

    url: str
    """As written, or as Apprise writes a configured service: it carries credentials."""
    service: str | apprise.NotifyBase

    @property
    def key(self) -> str:
        return _key(self.url)


@dataclass(frozen=True)
class DeliveryReport:
    sent: int
    failed: tuple[str, ...]
    """One line per route that failed: route name, target and the reason (no secrets)."""


def routes_for(config: Config, target: Target) -> list[Route]:
    """The routes a target names, or the default routes when it names none."""
    names = target.notify or tuple(name for name, r in config.routes.items() if r.default)
    return [config.routes[name] for name in names if name in config.routes]


def queue_change(config: Config, store: Store, target: Target, diff: Diff, at: datetime) -> int:
    """Queue one change alert per matching route (call inside the check's transaction)."""
    routes = [r for r in routes_for(config, target) if r.wants(target, diff.significance,
                                                                diff.topics)]
    for route in routes:
        store.enqueue(route.name, target.id, diff.to_version, "change", at,
                      due=_digest_time(config, route, at))
    return len(routes)


def queue_notice(config: Config, store: Store, target: Target, title: str, body: str,
                 at: datetime) -> None:
    """Queue a plain notice (e.g. "needs attention") for the target's routes."""
    with store.transaction():
        for route in routes_for(config, target):
            store.enqueue(route.name, target.id, None, "notice", at, title=title, body=body,
                          due=_digest_time(config, route, at))


def _digest_time(config: Config, route: Route, at: datetime) -> datetime | None:
    """The first digest time after `at` for a digest route; None sends at once."""
    if not route.digest:
        return None
    return parse_digest(route.digest).next_after(at, parse_timezone(config.settings.timezone))


def render_change(config: Config, target: Target, diff: Diff, recorded_at: datetime,
                  max_changes: int = MAX_CHANGES) -> Message:
    shown = replace(diff, changes=diff.changes[:max_changes])
    left_out = len(diff.changes) - len(shown.changes)
    title = f"{target.title}: {diff.summary.describe()}"
    if diff.topics:
        title += f" ({', '.join(topic_label(t) for t in diff.topics[:3])})"
    when = recorded_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    rank = f"Significance: {diff.significance}" if diff.significance else ""
    command = f"watcher diff {target.id} --from {diff.from_version} --to {diff.to_version}"
    link = _link(config, target, diff)
    more = f"… and {left_out} more change(s) not shown here." if left_out else ""
    intro = f"{target.title} changed (recorded {when}). {diff.summary.describe().capitalize()}."
    text = "\n".join(filter(None, [intro, rank, "", diff_as_text(shown).split("\n", 1)[1],
                                   more, f"Full diff: {command}", link]))
    markdown = "\n".join(filter(None, [_md_line(intro), _md_line(rank),
                                       diff_as_markdown(shown).split("\n", 1)[1], more,
                                       f"Full diff: `{command}`", link]))
    e = html.escape
    body_html = (
        '<div style="font-family:Arial,Helvetica,sans-serif;font-size:14px;line-height:1.5">'
        f'<p style="margin:0 0 8px 0">{e(intro)}</p>'
        + (f'<p style="margin:0 0 12px 0"><strong>{e(rank)}</strong></p>' if rank else "")
        + changes_as_html(shown)
        + (f'<p style="color:#555">{e(more)}</p>' if more else "")
        + f'<p style="margin-top:16px">Full diff: <code>{e(command)}</code>'
        + (f' — <a href="{e(link, quote=True)}">{e(link)}</a>' if link else "") + "</p></div>")
    return Message(title=title, text=text, markdown=markdown, html=body_html)


def render_digest(messages: Sequence[Message], documents: Sequence[str]) -> Message:
    """One message standing for several alerts, each under its own title, oldest first;
    `documents` (the targets' titles) are named in the digest's title."""
    count = len(messages)
    named = ", ".join(dict.fromkeys(documents))
    title = f"policy-watcher digest: {count} alert{'s' if count > 1 else ''} ({named})"
    text = "\n\n".join(f"== {m.title}\n{m.text}" for m in messages)
    markdown = "\n\n".join(f"*{_md_line(m.title)}*\n{m.markdown}" for m in messages)
    body_html = "".join(
        '<h2 style="font-family:Arial,Helvetica,sans-serif;font-size:16px;margin:24px 0 8px 0">'
        f"{html.escape(m.title)}</h2>{m.html}" for m in messages)
    return Message(title=title, text=text, markdown=markdown, html=body_html)


def _md_line(text: str) -> str:
    return re.sub(r"([\\`*_{}\[\]()#+!|<>~])", r"\\\1", text)


def _link(config: Config, target: Target, diff: Diff) -> str:
    base = config.settings.base_url
    if not base:
        return ""
    return f"{base.rstrip('/')}/{target.id}/diff?from={diff.from_version}&to={diff.to_version}"


def deliver_pending(config: Config, store: Store, force: bool = False,
                    now: datetime | None = None) -> DeliveryReport:
    """Send what the outbox owes; `force` ignores the backoff (watcher outbox retry). Alerts
    another sender is sending are left to it."""
    now = now or datetime.now(UTC)
    if force:
        with store.transaction():
            store.revive_failed()
    due = None if force else now
    claimant = f"{socket.gethostname()}:{os.getpid()}:{_PROCESS}:{secrets.token_hex(4)}"
    sent, failed = 0, []
    for candidates in _batches(config, store.outbox(("pending",), due_before=due)):
        for batch in _batches(config, _claim(store, candidates, claimant, due)):
            error = _deliver_claimed(config, store, batch, now, claimant)
            if error is None:
                sent += 1
            else:
                targets = ", ".join(dict.fromkeys(d.target for d in batch))
                failed.append(f"route {batch[0].route} ({targets}): {error}")
    return DeliveryReport(sent=sent, failed=tuple(failed))


def _claim(store: Store, deliveries: list[Delivery], claimant: str,
           due: datetime | None) -> list[Delivery]:
    """The deliveries this sender now holds for LEASE (not those another sender holds)."""
    clock = datetime.now(UTC)
    gone = {d.claimed_by for d in deliveries if d.claimed_by and _claimant_gone(d.claimed_by)}
    return store.claim(deliveries, claimant, clock, clock + LEASE, due, sorted(gone))


def _claimant_gone(claimant: str) -> bool:
    """Whether the process that made a claim (`host:pid:process:call`) is known to be dead:
    it ran on this host and its pid is free now, or is this process's (a restarted one's)."""
    host, pid, process = (claimant.split(":") + ["", ""])[:3]
    if os.name != "posix" or host != socket.gethostname() or not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        return process != _PROCESS
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:
        pass
    return False


def _deliver_claimed(config: Config, store: Store, batch: list[Delivery], now: datetime,
                     claimant: str) -> str | None:
    try:
        return _deliver(config, store, batch, now, claimant)
    except BaseException:
        store.release([d.id for d in batch], claimant)
        raise


def _batches(config: Config, deliveries: list[Delivery]) -> list[list[Delivery]]:
    """One message each, except a digest route's alerts: together (same URLs still owed)."""
    single, digests = [], {}
    for delivery in deliveries:
        route = config.routes.get(delivery.route)
        if route is not None and route.digest:
            owed = frozenset(_delivered(route, delivery))
            digests.setdefault((delivery.route, owed), []).append(delivery)
        else:
            single.append([delivery])
    return single + list(digests.values())


def _deliver(config: Config, store: Store, batch: list[Delivery], now: datetime,
             claimant: str) -> str | None:
    """Sends one message for the batch to the route's destinations still owed it; records the
    attempt, which ends the claim."""
    first = batch[0]
    route = config.routes.get(first.route)
    message = _message_for_batch(config, store, batch)
    delivered: Sequence[int | str] = first.delivered_urls
    if route is None or message is None:
        error: str | None = "route or target no longer in the configuration"
    else:
        delivered, error = _send_owed(config, route, message, _delivered(route, first))
    attempts = max(d.attempts for d in batch) + 1
    backoff = min(BACKOFF_BASE * 2 ** (attempts - 1), BACKOFF_CAP)
    with store.transaction():
        for delivery in batch:
            store.record_attempt(delivery.id, now, list(delivered), error,
                                 now + backoff if error else None,
                                 give_up=attempts >= MAX_ATTEMPTS, claimant=claimant)
    return error


def _send_owed(config: Config, route: Route, message: Message,
               delivered: set[str]) -> tuple[set[str], str | None]:
    """Sends to each destination not yet in `delivered`; those delivered now, and why others
    were not."""
    destinations, errors = _destinations(config, route)
    for destination in destinations:
        if destination.key in delivered:
            continue
        refused = _send(destination, message)
        if refused is None:
            delivered.add(destination.key)
        else:
            errors.append(refused)
    return delivered, "; ".join(errors) or None


def _delivered(route: Route, delivery: Delivery) -> set[str]:
    """Keys of the destinations that accepted the delivery; an older database's positions in
    `urls` are read against the route as it is now."""
    return {key if isinstance(key, str) else _key(route.urls[key])
            for key in delivery.delivered_urls
            if isinstance(key, str) or key < len(route.urls)}


def _key(url: str) -> str:
    """What the outbox remembers of a destination that accepted an alert: a hash, so no
    credential is stored, that stays the same when other URLs are added or reordered."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]


def _destinations(config: Config, route: Route) -> tuple[list[Destination], list[str]]:
    """Every destination of a route (each once), and why its configuration file cannot be
    used, if it cannot."""
    configured, problem = _configured(config, route)
    unique: dict[str, Destination] = {}
    for destination in [Destination(url, url) for url in route.urls] + configured:
        unique.setdefault(destination.key, destination)
    return list(unique.values()), [problem] if problem else []


def _configured(config: Config, route: Route) -> tuple[list[Destination], str | None]:
    """The services a route's Apprise configuration file defines, or why it cannot be used."""
    if not route.config:
        return [], None
    path = Path(route.config).expanduser()
    path = path if path.is_absolute() else config.path.parent / path
    try:
        with path.open("rb"):
            pass
    except OSError as error:
        return [], f"Apprise configuration file {path} cannot be read ({error.strerror})"
    loader = apprise.AppriseConfig()
    loader.add(str(path))
    with _CAPTURE, apprise.LogCapture(level=logging.ERROR, fmt="%(levelname)s") as log:
        services = loader.services()
    if not services:
        return [], f"Apprise configuration file {path} defines no URL Apprise can use"
    rejected = log.getvalue().split().count("ERROR")
    problem = (f"Apprise configuration file {path}: Apprise cannot use {rejected} of its "
               "entries" if rejected else None)
    return [Destination(s.url(privacy=False), s) for s in services], problem


def _message_for_batch(config: Config, store: Store, batch: list[Delivery]) -> Message | None:
    """The alert of a single delivery, or the digest of several (those still renderable)."""
    if len(batch) == 1:
        return _message_for(config, store, batch[0])
    shown = [(d, m) for d in batch if (m := _message_for(config, store, d, MAX_DIGEST_CHANGES))]
    documents = [target.title for d, _ in shown if (target := config.target(d.target))]
    return render_digest([m for _, m in shown], documents) if shown else None


def _message_for(config: Config, store: Store, delivery: Delivery,
                 max_changes: int = MAX_CHANGES) -> Message | None:
    target = config.target(delivery.target)
    if target is None:
        return None
    if delivery.kind != "change":
        title, body = delivery.title or "", delivery.body or ""
        return Message(title=title, text=body, markdown=_md_line(body),
                       html=f"<p>{html.escape(body)}</p>")
    version = store.version(target.id, delivery.version, with_clauses=False)
    diff = store.stored_diff(target.id, delivery.version or 0)
    if version is None or diff is None:
        return None
    return render_change(config, target, diff, version.recorded_at, max_changes)


def _send(destination: Destination, message: Message) -> str | None:
    """None once the destination accepted the message, else why not, in Apprise's words
    (redacted)."""
    url = destination.url
    scheme = url.split("://", 1)[0].lower()
    if scheme in HTML_SCHEMES:
        body, body_format = message.html, apprise.NotifyFormat.HTML
    elif scheme in MARKDOWN_SCHEMES:
        body, body_format = message.markdown, apprise.NotifyFormat.MARKDOWN
    else:
        body, body_format = message.text, apprise.NotifyFormat.TEXT
    sender = apprise.Apprise()
    if not sender.add(destination.service):
        return f"{redact(url)} is not a URL Apprise can use"
    with _CAPTURE, apprise.LogCapture(level=logging.DEBUG, fmt="%(levelname)s %(message)s") \
            as log:
        accepted = bool(sender.notify(title=message.title, body=body, body_format=body_format))
    if accepted:
        return None
    why = "; ".join(_reasons(log.getvalue()))
    return f"{redact(url)} did not accept the message" + (
        f": {redact_text(why, url)[:REASON_LENGTH]}" if why else "")


def _reasons(log: str) -> list[str]:
    """Apprise's warnings, and the debug records that say what the server or socket answered
    (never the other debug records: they carry the message itself)."""
    records: list[tuple[str, str]] = []
    for line in log.splitlines():
        level, _, text = line.partition(" ")
        if level in LOG_LEVELS:
            records.append((level, text))
        elif records:  # a record of several lines ("Response Details:\r\n{body}")
            records[-1] = (records[-1][0], f"{records[-1][1]} {line}")
    return [" ".join(text.split()) for level, text in records
            if level not in ("DEBUG", "INFO") or text.startswith(DETAIL_RECORDS)]


def send_test(config: Config, route: Route) -> list[str]:
    """Send a sample alert to every destination of a route; returns what failed (redacted)."""
    message = Message(
        title="policy-watcher test: Example — Privacy Policy: 1 clause modified (opt-out)",
        text="This is a test alert from policy-watcher. Real alerts name each changed clause "
             "and the words inserted or deleted.",
        markdown="This is a **test alert** from policy-watcher.",
        html="<p>This is a <strong>test alert</strong> from policy-watcher.</p>")
    destinations, problems = _destinations(config, route)
    return problems + [refused for destination in destinations
                       if (refused := _send(destination, message)) is not None]
