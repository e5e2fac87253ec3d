"""The broken-page guard: pages that must never become versions.

A bot challenge, a login wall, an error page or an empty body is a failed check with a reason
that says which; content that shrank by more than `settings.max_shrink` since the last version
is a `suspect` check. Either way no version is recorded and the daemon's "needs attention"
policy counts it as a failure. A challenge is known by its shape, little visible text with a
challenge's markers in its markup or title, so a policy naming a bot-protection vendor or
holding a captcha-guarded form is still a document.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import unescape

from watcher.models import Clause, Fetched

__all__ = ["page_problem", "shrink_problem", "failure_reason"]

CHALLENGE_TEXT = 2000
"""A challenge page shows little text: at most this many characters, its title included."""
CAPTCHA_TEXT = 600
"""A captcha widget or a challenge phrase only marks a challenge on a page this short."""


@dataclass(frozen=True)
class _Challenge:
    name: str
    markup: str = ""
    """What only a challenge page's tags, attributes or scripts hold (its infrastructure)."""
    title: str = ""
    """What only a challenge page's title says."""
    widget: str = ""
    """A captcha widget or script, also found in ordinary forms: only on a very short page."""
    words: str = ""
    """What a challenge page says, also found in ordinary text: only on a very short page."""


CHALLENGES = (
    _Challenge("Cloudflare bot challenge",
               markup=r"cf-chl-|cf_chl_|/challenge-platform/h/|orchestrate/(chl|managed|jsch)",
               title=r"just a moment|attention required! \| cloudflare|checking your browser",
               widget=r"cf-turnstile|challenges\.cloudflare\.com/turnstile",
               words=r"checking your browser|checking if the site connection is secure"),
    _Challenge("DataDome bot challenge", markup=r"captcha-delivery\.com"),
    _Challenge("PerimeterX bot challenge", markup=r"px-captcha",
               title=r"access to this page has been denied"),
    _Challenge("captcha", title=r"verify (that )?you are (a )?human|are you a robot",
               widget=r"g-recaptcha|h-captcha|recaptcha/api\.js|hcaptcha\.com/1/api",
               words=r"verify (that )?you are (a )?human|are you a robot|not a robot"),
    _Challenge("access denied by a bot filter", title=r"^access denied$",
               widget=r"_incapsula_resource", words=r"request unsuccessful\. incapsula"),
)
_HIDDEN_START = re.compile(r"<!--|<(script|style|noscript|template)\b", re.I)
_TITLE = re.compile(r"<title\b[^<>]*>([^<]*)", re.I)
_TAG = re.compile(r"<[^<>]*>")
LOGIN = re.compile(r"(sign|log) ?in to (continue|view|access)|please (sign|log) ?in\b", re.I)
ERROR_TITLE = re.compile(r"<title>[^<]*(404|not found|internal server error|"
                         r"service unavailable|bad gateway|page introuvable)[^<]*</title>", re.I)
SMALL_PAGE = 600


@dataclass(frozen=True)
class _Shape:
    """What a page shows and what its markup holds, as the challenge markers are looked up."""

    title: str
    text: str
    markup: str

    @classmethod
    def of(cls, html: str) -> _Shape:
        hidden, shown = _split_hidden(html)
        title = _TITLE.search(shown)
        return cls(title=" ".join(unescape(title.group(1)).split()) if title else "",
                   text=" ".join(unescape(_TAG.sub(" ", shown)).split()),
                   markup=hidden + " ".join(_TAG.findall(shown)))

    def shows(self, challenge: _Challenge) -> bool:
        if len(self.text) > CHALLENGE_TEXT:
            return False
        if _found(challenge.markup, self.markup) or _found(challenge.title, self.title):
            return True
        return len(self.text) <= CAPTCHA_TEXT and (
            _found(challenge.widget, self.markup) or _found(challenge.words, self.text))


def _split_hidden(html: str) -> tuple[str, str]:
    """The page's comments, scripts and styles, and the rest, in one pass (linear time)."""
    hidden: list[str] = []
    shown: list[str] = []
    position = 0
    while (match := _HIDDEN_START.search(html, position)) is not None:
        closer = "-->" if match.group(1) is None else rf"</{match.group(1)}\b[^<>]*>"
        close = re.compile(closer, re.I).search(html, match.end())
        end = close.end() if close else len(html)
        shown.append(html[position:match.start()])
        hidden.append(html[match.start():end])
        position = end
    shown.append(html[position:])
    return " ".join(hidden), " ".join(shown)


def _found(pattern: str, where: str) -> bool:
    return bool(pattern) and re.search(pattern, where, re.I) is not None


def _challenge(text: str) -> str | None:
    """The challenge a page is, judged on its shape: a marker of a challenge in its markup or
    title, or a captcha as its main content, on a page that shows little text."""
    shape = _Shape.of(text[:1_000_000])
    return next((c.name for c in CHALLENGES if shape.shows(c)), None)


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
