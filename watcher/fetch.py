"""Fetching: turn a URL into a `Fetched` (content, or the reason there is none).

This module owns the plain-HTTP fetcher: a timeout on the whole fetch, redirects, a size cap,
charset detection, a real User-Agent and Accept-Language, and which headers can be sent. A
fetcher never raises for a network or HTTP problem, an unusable header or URL: the error
becomes `Fetched.error`, which the check pipeline records as a failed check. An error names a
header but never quotes its value, which may be a secret.
"""

from __future__ import annotations

import asyncio
import codecs
import logging
import os
import re
import time
from dataclasses import dataclass, field
from typing import Protocol

import charset_normalizer
import httpx

__all__ = ["FetchRequest", "Fetcher", "HttpFetcher", "decode_html", "unsendable_header",
           "too_large_reason"]

from watcher.models import Fetched

log = logging.getLogger("watcher.fetch")

_META_CHARSET = re.compile(
    rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
_MARKUP_PROBE = b'<meta charset="x"><p class=a-b>\\u00e9 +AOk- 1.</p>'
"""ASCII markup that a charset able to read HTML reads as itself (not UTF-16, UTF-7, IDNA or
unicode-escape, which Python knows but which would garble or reject a page)."""
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


@dataclass(frozen=True)
class FetchRequest:
    """What to fetch and how: the part of a target a fetcher needs."""

    url: str
    headers: tuple[tuple[str, str], ...] = ()
    language: str = "en"
    timeout: float = 30.0
    max_bytes: int = 20_000_000
    user_agent: str = ""
    extra: tuple[tuple[str, str], ...] = field(default=())
    """Fetcher-specific options (e.g. a browser's wait_for), as sorted pairs."""


class Fetcher(Protocol):
    name: str

    async def fetch(self, request: FetchRequest) -> Fetched: ...

    async def aclose(self) -> None: ...


def accept_language(language: str) -> str:
    primary = language.split("-")[0]
    return f"{language},{primary};q=0.9,en;q=0.5" if primary != "en" else f"{language},en;q=0.9"


def decode_html(content: bytes, header_charset: str | None = None, source: str = "page") -> str:
    """Decode a page: BOM, then the HTTP charset, then <meta charset>, then detection.

    A declared charset that cannot read HTML is logged (naming `source`) and passed over."""
    for bom, encoding in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16"),
                          (codecs.BOM_UTF16_BE, "utf-16")):
        if content.startswith(bom):
            return content.decode(encoding, errors="replace").lstrip("\ufeff")
    declared = [(header_charset, True)]
    meta = _META_CHARSET.search(content[:4096])
    if meta:
        declared.append((meta.group(1).decode("ascii", "ignore"), False))
    unusable = []
    for charset, from_header in declared:
        if charset:
            text = _decode_declared(content, charset, from_header)
            if text is not None:
                return text
            unusable.append(charset)
    text, encoding = _decode_undeclared(content)
    if unusable:
        log.warning("%s declares charset %s, which cannot decode HTML; read as %s", source,
                    " then ".join(repr(charset) for charset in unusable), encoding)
    return text


def _decode_declared(content: bytes, charset: str, from_header: bool) -> str | None:
    """The page read in a charset it declares; None when Python does not know that charset
    or it cannot read HTML. Only the server may declare UTF-16 for a page without a BOM."""
    try:
        codec = codecs.lookup(charset).name
        if not (from_header and codec.startswith("utf-16")) and \
                _MARKUP_PROBE.decode(codec) != _MARKUP_PROBE.decode("ascii"):
            return None
        return content.decode(codec, errors="replace")
    except (LookupError, UnicodeError):
        return None


def _decode_undeclared(content: bytes) -> tuple[str, str]:
    """A page with no usable declared charset, and the encoding it was read in."""
    try:
        return content.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return _detect(content)


def _detect(content: bytes) -> tuple[str, str]:
    """An undeclared legacy encoding. Single-byte code pages often tie (French text reads
    equally well as cp1250 and cp1252); a tie goes to windows-1252, the web's default
    (WHATWG Encoding), so "à" does not come out as "ŕ"."""
    matches = charset_normalizer.from_bytes(content)
    best = matches.best()
    if best is None:
        return content.decode("windows-1252", errors="replace"), "windows-1252"
    tied = [match for match in matches
            if (match.chaos, match.coherence) == (best.chaos, best.coherence)]
    chosen = next((match for match in tied if match.encoding == "cp1252"), best)
    return str(chosen), chosen.encoding


def unsendable_header(name: str, value: str) -> str | None:
    """Why HTTP cannot carry this header, or None; it never quotes the value, which may hold
    a secret. The one rule for the targets file (checked on load) and for every request."""
    if not _HEADER_NAME.fullmatch(name):
        return f"header {name!r}: not a valid HTTP header name"
    if not value.isascii():
        return f"header {name!r}: value must be ASCII (percent-encode it)"
    if _CONTROL.search(value):
        return (f"header {name!r}: value contains a line break or another control character "
                "(a trailing newline in an environment variable?)")
    if value != value.strip(" \t"):
        return f"header {name!r}: value must not start or end with a space"
    return None


def _request_problem(request: FetchRequest) -> str | None:
    for name, value in _headers(request).items():
        why = unsendable_header(name, value)
        if why:
            return f"{why}; the request was not sent"
    return None


def _headers(request: FetchRequest) -> dict[str, str]:
    return {"User-Agent": request.user_agent,
            "Accept": "text/html,application/xhtml+xml,application/pdf;q=0.9,*/*;q=0.8",
            "Accept-Language": accept_language(request.language),
            **dict(request.headers)}


class _InvalidURL(Exception):
    """A URL httpx accepts but cannot connect to (a port out of range, no host)."""

    def __init__(self, url: httpx.URL, why: str):
        super().__init__(why)
        self.url = url


async def _check_url(request: httpx.Request) -> None:
    """Refuse a request (the first, or a redirect the server chose) to an unusable URL."""
    url = request.url
    if not url.host:
        raise _InvalidURL(url, "no host")
    if url.port is not None and not 0 < url.port < 65536:
        raise _InvalidURL(url, f"port {url.port} is out of range")


class HttpFetcher:
    """Plain HTTP(S) with httpx: one connection pool shared by every fetch of a run."""

    name = "http"

    def __init__(self, max_redirects: int = 10):
        self._client = httpx.AsyncClient(follow_redirects=True, max_redirects=max_redirects,
                                         http2=False, event_hooks={"request": [_check_url]})

    async def aclose(self) -> None:
        await self._client.aclose()

    async def fetch(self, request: FetchRequest) -> Fetched:
        started = time.monotonic()
        problem = _request_problem(request)
        result = Fetched(url=request.url, error=problem) if problem else \
            await self._fetch_within_timeout(request)
        elapsed = int((time.monotonic() - started) * 1000)
        return Fetched(**{**result.__dict__, "duration_ms": elapsed, "fetcher": self.name})

    async def _fetch_within_timeout(self, request: FetchRequest) -> Fetched:
        """The page, or why not; `request.timeout` bounds the whole fetch, not each read."""
        try:
            async with asyncio.timeout(request.timeout):
                return await self._get(request, _headers(request))
        except httpx.TooManyRedirects:
            error = "too many redirects"
        except httpx.ConnectTimeout:
            error = f"timed out after {request.timeout:g}s connecting"
        except (TimeoutError, httpx.TimeoutException):
            error = (f"timed out: the server did not send the whole page within "
                     f"{request.timeout:g}s")
        except httpx.HTTPError as problem:
            error = _network_error(problem)
        except _InvalidURL as invalid:
            first = invalid.url == httpx.URL(request.url)
            error = f"{'invalid URL' if first else 'redirect to an invalid URL'} " \
                    f"({invalid}): {invalid.url}"
        return Fetched(url=request.url, error=error)

    async def _get(self, request: FetchRequest, headers: dict[str, str]) -> Fetched:
        timeout = httpx.Timeout(request.timeout)
        async with self._client.stream("GET", request.url, headers=headers,
                                       timeout=timeout) as response:
            declared = int(response.headers.get("content-length") or 0)
            if declared > request.max_bytes:
                return _too_large(request, response, declared)
            chunks, size = [], 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > request.max_bytes:
                    return _too_large(request, response, size)
                chunks.append(chunk)
        content = b"".join(chunks)
        content_type = response.headers.get("content-type", "")
        mime = content_type.split(";")[0].strip().lower()
        error = None
        if response.status_code >= 400:
            error = f"HTTP {response.status_code} {response.reason_phrase}".strip()
        is_pdf = mime == "application/pdf" or content.startswith(b"%PDF-")
        text = "" if is_pdf else decode_html(content, response.charset_encoding,
                                             str(response.url))
        return Fetched(url=request.url, final_url=str(response.url), status=response.status_code,
                       content=content, content_type=mime, text=text, error=error)


def _too_large(request: FetchRequest, response: httpx.Response, size: int) -> Fetched:
    return Fetched(url=request.url, final_url=str(response.url), status=response.status_code,
                   error=too_large_reason(request.max_bytes, size))


def too_large_reason(max_bytes: int, size: int) -> str:
    """Why a page over `settings.max_bytes` is a failed check (every fetcher says it so)."""
    return (f"response larger than the {max_bytes:,}-byte cap (at least {size:,} bytes); "
            "raise settings.max_bytes if it is real")


def _network_error(error: httpx.HTTPError) -> str:
    """httpx often says only "All connection attempts failed"; the deepest cause says why
    ("Connection refused", "Name or service not known"). A request httpx refused to send is
    not described: its message may quote a header value, which may be a secret."""
    if isinstance(error, httpx.LocalProtocolError):
        return "the request could not be sent: it is not valid HTTP (LocalProtocolError)"
    cause: BaseException = error
    for _ in range(10):
        deeper = cause.__cause__ or cause.__context__
        if deeper is None:
            break
        cause = deeper
    if isinstance(cause, OSError) and cause.errno:
        reason = os.strerror(cause.errno) if cause.errno > 0 else cause.strerror or str(cause)
    else:
        reason = str(cause) or type(cause).__name__
    return f"network error: {reason} ({type(error).__name__})"
