"""The broken-page guard: pages that must never become versions.

A bot challenge, a login wall, an error page or an empty body is a failed check with a reason
that says which; content that shrank by more than `settings.max_shrink` since the last version
is a `suspect` check. Either way no version is recorded and the daemon's "needs attention"
policy counts it as a failure.
"""

from __future__ import annotations

import re

from watcher.models import Clause, Fetched

__all__ = ["page_problem", "shrink_problem", "failure_reason"]

CHALLENGES = (
    (re.compile(r"just a moment\.\.\.|just a moment…|cf-chl-|cf_chl_|challenge-platform|"
                r"checking your browser|attention required! \| cloudflare", re.I),
     "Cloudflare bot challenge"),
    (re.compile(r"captcha-delivery|datadome", re.I), "DataDome bot challenge"),
    (re.compile(r"px-captcha|perimeterx", re.I), "PerimeterX bot challenge"),
    (re.compile(r"verify (that )?you are (a )?human|are you a robot|g-recaptcha|h-captcha|"
                r"hcaptcha\.com", re.I), "captcha"),
    (re.compile(r"<title>\s*access denied\s*</title>|request unsuccessful\. incapsula", re.I),
     "access denied by a bot filter"),
)
LOGIN = re.compile(r"(sign|log) ?in to (continue|view|access)|please (sign|log) ?in\b", re.I)
ERROR_TITLE = re.compile(r"<title>[^<]*(404|not found|internal server error|"
                         r"service unavailable|bad gateway|page introuvable)[^<]*</title>", re.I)
SMALL_PAGE = 600


def _challenge(text: str) -> str | None:
    head = text[:200_000]
    return next((name for pattern, name in CHALLENGES if pattern.search(head)), None)


def failure_reason(fetched: Fetched) -> str:
    """The reason of a failed fetch, naming a challenge page when the body is one."""
    reason = fetched.error or "fetch failed"
    challenge = _challenge(fetched.text) if fetched.text else None
    return f"{reason}: {challenge} page" if challenge else reason


def page_problem(fetched: Fetched) -> str | None:
    """Why a successfully fetched page is not a document, or None when it looks like one."""
    if not fetched.content.strip():
        return "empty response body"
    if not fetched.text:
        return None
    challenge = _challenge(fetched.text)
    if challenge:
        return f"{challenge} page instead of the document"
    small = len(re.sub(r"<[^>]+>|\s+", "", fetched.text[:50_000])) < SMALL_PAGE * 4
    if small and ERROR_TITLE.search(fetched.text[:5000]):
        return "error page instead of the document"
    if small and LOGIN.search(fetched.text) and re.search(r"type=[\"']?password", fetched.text):
        return "login wall instead of the document"
    return None


def shrink_problem(clauses: list[Clause], previous: tuple[Clause, ...],
                   max_shrink: float) -> str | None:
    """Suspect when the text shrank by more than `max_shrink` (a share) since the last version."""
    before = sum(len(c.text) for c in previous)
    after = sum(len(c.text) for c in clauses)
    if before and after < before * (1 - max_shrink):
        return (f"content shrank by {1 - after / before:.0%} since the last version "
                f"({before:,} → {after:,} characters); not recorded. If the document really "
                "got shorter, raise settings.max_shrink")
    return None
