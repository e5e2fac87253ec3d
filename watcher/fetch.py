"""Fetching: turn a URL into a `Fetched` (content, or the reason there is none).

This module owns the plain-HTTP fetcher: timeouts, redirects, a size cap, charset detection,
a real User-Agent and Accept-Language. A fetcher never raises for a network or HTTP problem:
the error becomes `Fetched.error`, which the check pipeline records as a failed check.
"""

from __future__ import annotations

import codecs
import os
import re
import time
from dataclasses import dataclass, field
from typing import Protocol

import charset_normalizer
import httpx

__all__ = ["FetchRequest", "Fetcher", "HttpFetcher", "decode_html"]

from watcher.models import Fetched

_META_CHARSET = re.compile(
    rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)


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


def decode_html(content: bytes, header_charset: str | None = None) -> str:
    """Decode a page: BOM, then the HTTP charset, then <meta charset>, then detection."""
    for bom, encoding in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16"),
                          (codecs.BOM_UTF16_BE, "utf-16")):
        if content.startswith(bom):
            return content.decode(encoding, errors="replace").lstrip("\ufeff")
    candidates = [header_charset]
    meta = _META_CHARSET.search(content[:4096])
    if meta:
        candidates.append(meta.group(1).decode("ascii", "ignore"))
    for candidate in candidates:
        if candidate:
            try:
                return content.decode(codecs.lookup(candidate).name, errors="replace")
            except LookupError:
                continue
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        return _detect(content)


def _detect(content: bytes) -> str:
    """An undeclared legacy encoding. Single-byte code pages often tie (French text reads
    equally well as cp1250 and cp1252); a tie goes to windows-1252, the web's default
    (WHATWG Encoding), so "à" does not come out as "ŕ"."""
    matches = charset_normalizer.from_bytes(content)
    best = matches.best()
    if best is None:
        return content.decode("windows-1252", errors="replace")
    tied = [match for match in matches
            if (match.chaos, match.coherence) == (best.chaos, best.coherence)]
    return str(next((match for match in tied if match.encoding == "cp1252"), best))


class HttpFetcher:
    """Plain HTTP(S) with httpx: one connection pool shared by every fetch of a run."""

    name = "http"

    def __init__(self, max_redirects: int = 10):
        self._client = httpx.AsyncClient(follow_redirects=True, max_redirects=max_redirects,
                                         http2=False)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def fetch(self, request: FetchRequest) -> Fetched:
        started = time.monotonic()
        headers = {"User-Agent": request.user_agent,
                   "Accept": "text/html,application/xhtml+xml,application/pdf;q=0.9,*/*;q=0.8",
                   "Accept-Language": accept_language(request.language),
                   **dict(request.headers)}
        try:
            result = await self._get(request, headers)
        except httpx.TooManyRedirects:
            result = Fetched(url=request.url, error="too many redirects")
        except httpx.TimeoutException:
            result = Fetched(url=request.url, error=f"timed out after {request.timeout:g}s")
        except httpx.HTTPError as error:
            result = Fetched(url=request.url, error=_network_error(error))
        elapsed = int((time.monotonic() - started) * 1000)
        return Fetched(**{**result.__dict__, "duration_ms": elapsed, "fetcher": self.name})

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
        text = "" if is_pdf else decode_html(content, response.charset_encoding)
        return Fetched(url=request.url, final_url=str(response.url), status=response.status_code,
                       content=content, content_type=mime, text=text, error=error)


def _too_large(request: FetchRequest, response: httpx.Response, size: int) -> Fetched:
    return Fetched(url=request.url, final_url=str(response.url), status=response.status_code,
                   error=f"response larger than the {request.max_bytes:,}-byte cap "
                         f"(at least {size:,} bytes); raise settings.max_bytes if it is real")


def _network_error(error: httpx.HTTPError) -> str:
    """httpx often says only "All connection attempts failed"; the deepest cause says why
    ("Connection refused", "Name or service not known")."""
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
