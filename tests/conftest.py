"""Shared test stand-ins: a real HTTP server on loopback, a project directory, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from watcher.cli import cli

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("WATCHER_CORPUS", ROOT.parent / "shared" / "corpus"))


@dataclass
class Page:
    body: bytes
    status: int = 200
    content_type: str = "text/html; charset=utf-8"
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


class Site:
    """A local web site whose pages a test sets and changes between checks."""

    def __init__(self) -> None:
        self.pages: dict[str, Page | Callable[[], Page]] = {}
        self.hits: dict[str, int] = {}
        self.request_headers: dict[str, dict[str, str]] = {}
        self.posts: list[tuple[str, bytes]] = []
        self.post_answer: tuple[int, bytes] = (200, b"")
        """What every POST gets back: a webhook receiver that may refuse."""
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                path = self.path.split("?")[0]
                site.hits[path] = site.hits.get(path, 0) + 1
                site.request_headers[path] = dict(self.headers)
                page = site.pages.get(path)
                if callable(page):
                    page = page()
                if page is None:
                    page = Page(b"<html><body><h1>Not found</h1></body></html>", status=404)
                if page.delay:
                    time.sleep(page.delay)
                try:
                    self.send_response(page.status)
                    self.send_header("Content-Type", page.content_type)
                    self.send_header("Content-Length", str(len(page.body)))
                    for name, value in page.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(page.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_POST(self) -> None:  # noqa: N802 - a webhook receiver for notifications
                length = int(self.headers.get("Content-Length") or 0)
                site.posts.append((self.path, self.rfile.read(length)))
                status, body = site.post_answer
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path

    def set(self, path: str, body: str | bytes, **options: object) -> str:
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.pages[path] = Page(data, **options)  # type: ignore[arg-type]
        return self.url(path)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def site() -> Iterator[Site]:
    server = Site()
    yield server
    server.close()


@dataclass
class Project:
    """A project directory with a targets.toml and its database, driven through the CLI."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "targets.toml"

    @property
    def db(self) -> Path:
        return self.root / "snapshots" / "watcher.db"

    def write_config(self, text: str) -> Path:
        self.config.write_text(text, encoding="utf-8")
        return self.config

    def run(self, *args: str) -> Result:
        """Run `watcher ARGS` in-process through click (the real command, no patching)."""
        return CliRunner().invoke(cli, ["--config", str(self.config), *args],
                                  catch_exceptions=False)

    def json(self, *args: str) -> object:
        result = self.run(*args, "--json")
        assert result.exit_code in (0, 1), result.output
        return json.loads(result.stdout)

    def spawn(self, *args: str, **options: object) -> subprocess.Popen:
        """Start `watcher ARGS` as a real separate process."""
        return subprocess.Popen([sys.executable, "-m", "watcher", "--config", str(self.config),
                                 *args], cwd=self.root, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, **options)  # type: ignore


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path)


def target_toml(target_id: str, url: str, **fields: object) -> str:
    """A [[targets]] table for tests."""
    lines = ["[[targets]]", f'id = "{target_id}"', 'service = "Example"',
             f'document = "{fields.pop("document", "Privacy Policy")}"', f'url = "{url}"']
    fields.setdefault("fetcher", "http")
    lines += [f"{key} = {json.dumps(value)}" for key, value in fields.items()]
    return "\n".join(lines) + "\n"


def corpus_dir(slug: str) -> Path:
    """A corpus timeline; missing data fails in CI and skips elsewhere."""
    path = CORPUS / slug
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"corpus not found at {path} (set WATCHER_CORPUS)")
        pytest.skip(f"corpus not found at {path}")
    return path


def require_browser() -> None:
    """A Chromium for the browser tests; missing fails in CI and skips elsewhere."""
    from watcher.browser import BrowserNotFound, find_browser
    from watcher.config import BrowserSettings
    try:
        find_browser(BrowserSettings(), None)
    except BrowserNotFound as error:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests need a Chromium in CI: {error}")
        pytest.skip(str(error))


class Silent:
    """A loopback port that accepts connections and never answers (a hung third party)."""

    def __init__(self) -> None:
        import socket
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.held: list = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                self.held.append(self.sock.accept()[0])
            except OSError:
                return

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()
