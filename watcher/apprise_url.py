"""Apprise URLs: checked at configuration time and redacted before anything is shown or stored.

Apprise URLs carry credentials (SMTP passwords, Slack tokens in the path), so nothing outside
this module ever prints one as written: `redact` keeps the scheme and a plain host name only.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote, urlsplit

__all__ = ["redact", "redact_text", "url_problem"]

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
_SETTINGS = frozenset(("cto", "emojis", "format", "method", "optional", "overflow", "redirect",
                       "retry", "rto", "store", "tz", "verify", "wait"))
"""Apprise's own URL parameters: never credentials, and in every URL Apprise writes back."""
_PLAIN_HOST = re.compile(r"^(localhost|[0-9.]+|\[[0-9a-fA-F:]+\]|[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+)$")

logging.getLogger("apprise").addHandler(logging.NullHandler())
logging.getLogger("apprise").propagate = False


def redact(url: str) -> str:
    """`scheme://host:port/…`: the host only when it looks like a host name, never a token."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port
    except ValueError:
        return "(unparseable URL)"
    scheme = parts.scheme or "?"
    if not _is_plain_host(host):
        return f"{scheme}://…"
    rest = "/…" if (parts.path.strip("/") or parts.query or parts.username) else ""
    return f"{scheme}://{host}{f':{port}' if port else ''}{rest}"


def redact_text(text: str, url: str) -> str:
    """A message about `url` (an Apprise log line) with every URL and every part of `url`
    that may be a credential or an address (user, password, path, query values) redacted."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2].split(":")[0]  # as written: tokens keep their case
    secrets = [parts.username, parts.password, None if _is_plain_host(host.lower()) else host,
               *re.split(r"[/#]", parts.path + "#" + parts.fragment),
               *(value for pair in re.split(r"[&;]", parts.query)
                 if pair.partition("=")[0].lower() not in _SETTINGS
                 for value in re.split(r"[=,]", pair)[1:])]
    text = _URL.sub(lambda m: redact(m.group(0)), text)
    for secret in sorted({unquote(s) for s in secrets if s and len(s) >= 4}, key=len,
                         reverse=True):
        text = text.replace(secret, "…")
    return text


def _is_plain_host(host: str) -> bool:
    """A host name or address, not a token in the host's place (slack://T000/…)."""
    return bool(_PLAIN_HOST.match(host)) and ("." in host or host == "localhost")


def url_problem(url: str) -> str | None:
    """Why Apprise cannot use this URL (without revealing it), or None; sends nothing."""
    if "://" not in url:
        return f"is not an Apprise URL ({redact(url)}); write e.g. mailto://… or slack://…"
    import apprise  # imported on use: it costs 0.3 s, and most commands never need it

    if apprise.Apprise.instantiate(url) is None:
        return (f"is not a URL Apprise can use ({redact(url)}): unknown service or missing "
                "part; see https://github.com/caronc/apprise/wiki")
    return None
