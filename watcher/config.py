"""Configuration: `targets.toml` read, validated and turned into frozen Target / Settings.

This module owns the file format. Every problem is reported with the file, the line where it
can be found, the field path (`targets[2].fetcher`), what is allowed, and a suggestion for a
misspelt key; unknown keys are errors. `${ENV_VAR}` in notification URLs and header values
is expanded here, so secrets stay out of the file and nothing else reads the environment.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError
from pydantic.dataclasses import dataclass as validated

from watcher.apprise_url import url_problem
from watcher.fetch import unsendable_header
from watcher.normalize import DATE_PATTERNS, Range, Selection, check_selector
from watcher.schedule import Schedule, ScheduleError, parse_digest, parse_schedule, parse_timezone

__all__ = ["BrowserSettings", "Config", "ConfigError", "Route", "Settings", "Source", "Target",
           "load_config", "parse_config"]

Fetcher = Literal["auto", "http", "browser"]
SLUG = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
ENV_REFERENCE = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)\}")
STRICT = ConfigDict(extra="forbid", frozen=True)
DEFAULT_USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/156.0.0.0 Safari/537.36 policy-watcher/0.1 (+https://github.com/policy-watcher)")


@validated(config=STRICT)
class DaemonSettings:
    """The `[settings.daemon]` table: how `watcher run` paces and guards its checks."""

    startup_window: float = 60.0
    max_concurrent: int = 4
    host_delay: float = 1.0
    jitter: float = 30.0
    grace_period: float = 30.0
    failures_before_broken: int = 3
    retry_base: float = 60.0
    heartbeat_interval: float = 5.0
    metrics_port: Annotated[int, Field(ge=0, le=65535)] = 0
    """A port for `/healthz` and Prometheus `/metrics`; 0 serves neither."""
    metrics_host: str = "127.0.0.1"


@validated(config=STRICT)
class BrowserSettings:
    """The `[settings.browser]` table: which Chromium to use and how hard to drive it."""

    executable_path: str | None = None
    ws_endpoint: str | None = None
    """A Playwright server (`ws://…`) to connect to instead of launching a browser."""
    cdp_url: str | None = None
    """A Chrome DevTools endpoint (`http://…:9222`, browserless-style) instead of launching."""
    max_pages: int = 2
    timeout: float = 45.0
    network_idle_cap: float = 3.0
    block_third_party: bool = False
    third_party_timeout: float = 5.0
    auto_recheck_days: float = 7.0
    close_after_idle: Annotated[float, Field(ge=0)] = 300.0
    """Seconds without a fetch before the browser and Playwright's driver are closed; 0 never."""
    relaunch_after_pages: Annotated[int, Field(ge=0)] = 1000
    """Pages after which the browser is replaced (once its open pages are done); 0 never."""


@validated(config=STRICT)
class Settings:
    """The `[settings]` table: where the database lives and the defaults of every target."""

    database: str = "snapshots/watcher.db"
    keep_raw: Literal["versions", "all"] = "versions"
    fetcher: Fetcher = "auto"
    schedule: str = "every 6h"
    timezone: str = "UTC"
    language: str = "en"
    user_agent: str = DEFAULT_USER_AGENT
    timeout: float = 30.0
    max_bytes: int = 20_000_000
    concurrency: int = 4
    base_url: str | None = None
    daemon: DaemonSettings = field(default_factory=DaemonSettings)
    feed_path: str | None = None
    """Where the daemon keeps an Atom feed of changes (relative to the targets file)."""
    max_shrink: float = 0.5
    """A check whose text shrank by more than this share since the last version is suspect."""
    lexicon: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Extra significance patterns: topic = [regex, ...] (see watcher/significance.py)."""
    browser: BrowserSettings = field(default_factory=BrowserSettings)


SETTINGS_TABLES: dict[str, type] = {"browser": BrowserSettings, "daemon": DaemonSettings}
"""The tables nested in [settings]: errors in them name `settings.TABLE.key` and its line."""


@validated(config=STRICT)
class RangeSelector:
    """`{startBefore|startAfter = CSS, endBefore|endAfter = CSS}`: the content in between."""

    startBefore: str | None = None  # noqa: N815 - Open Terms Archive's key names
    startAfter: str | None = None  # noqa: N815
    endBefore: str | None = None  # noqa: N815
    endAfter: str | None = None  # noqa: N815

    def as_range(self) -> Range:
        return Range(start=self.startBefore or self.startAfter or "",
                     end=self.endBefore or self.endAfter or "",
                     start_after=self.startBefore is None, end_after=self.endBefore is None)

    def problem(self) -> str | None:
        if (self.startBefore is None) == (self.startAfter is None):
            return "a range needs exactly one of startBefore, startAfter"
        if (self.endBefore is None) == (self.endAfter is None):
            return "a range needs exactly one of endBefore, endAfter"
        return None


Selector = str | RangeSelector


def _selection(select: tuple[Selector, ...], remove: tuple[str, ...],
               track_links: bool = False) -> Selection:
    return Selection(select=tuple(s if isinstance(s, str) else s.as_range() for s in select),
                     remove=remove, track_links=track_links)


@validated(config=STRICT)
class Route:
    """A `[notify.NAME]` table: where alerts go (Apprise URLs) and which ones."""

    name: str
    urls: tuple[str, ...] = ()
    config: str | None = None
    default: bool = False
    min_significance: Literal["high", "medium", "low", "cosmetic"] = "cosmetic"
    topics: tuple[str, ...] = ()
    """Only changes with one of these topics (empty: any)."""
    targets: tuple[str, ...] = ()
    """Only these target ids (empty: any)."""
    tags: tuple[str, ...] = ()
    """Only targets with one of these tags (empty: any)."""
    digest: str | None = None
    """Gather alerts and send them as one message at these times (`daily`, `weekly`, cron)."""

    def wants(self, target: Target, significance: str | None, topics: tuple[str, ...]) -> bool:
        ranks = ("cosmetic", "low", "medium", "high")
        return ((significance is None
                 or ranks.index(significance) >= ranks.index(self.min_significance))
                and (not self.topics or bool(set(self.topics) & set(topics)))
                and (not self.targets or target.id in self.targets)
                and (not self.tags or bool(set(self.tags) & set(target.tags))))


@validated(config=STRICT)
class Source:
    """One page of a document made of several (`sources = [{url = …}, …]`)."""

    url: str
    select: tuple[Selector, ...] = ()
    remove: tuple[str, ...] = ()
    fetcher: Fetcher | None = None
    wait_for: str | None = None

    @property
    def selection(self) -> Selection:
        return _selection(self.select, self.remove)


@validated(config=STRICT)
class Target:
    """One `[[targets]]` entry: a document of a service, and how to read it."""

    id: str
    service: str
    document: str
    url: str
    select: tuple[Selector, ...] = ()
    remove: tuple[str, ...] = ()
    fetcher: Fetcher | None = None
    schedule: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    language: str | None = None
    notify: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    sources: tuple[Source, ...] = ()
    wait_for: str | None = None
    delay: float = 0.0
    screenshot: bool = False
    ignore: tuple[str, ...] = ()
    """Regular expressions removed from clause texts before comparing (e.g. a visit counter)."""
    ignore_dates: bool = False
    """Drop dates and "last updated" stamps before comparing."""
    track_links: bool = False
    """Record link targets (tracking parameters stripped) as part of the text."""

    @property
    def ignored_patterns(self) -> tuple[str, ...]:
        return self.ignore + (DATE_PATTERNS if self.ignore_dates else ())

    @property
    def selection(self) -> Selection:
        return _selection(self.select, self.remove, self.track_links)

    @property
    def title(self) -> str:
        return f"{self.service} — {self.document}"


@dataclass(frozen=True)
class Config:
    path: Path
    settings: Settings
    targets: tuple[Target, ...]
    routes: dict[str, Route] = field(default_factory=dict)

    @property
    def database_path(self) -> Path:
        db = Path(self.settings.database).expanduser()
        return db if db.is_absolute() else self.path.parent / db

    def target(self, target_id: str) -> Target | None:
        return next((t for t in self.targets if t.id == target_id), None)

    def fetcher_of(self, target: Target) -> str:
        return target.fetcher or self.settings.fetcher

    def language_of(self, target: Target) -> str:
        return target.language or self.settings.language

    def schedule_of(self, target: Target) -> Schedule:
        return parse_schedule(target.schedule or self.settings.schedule)


@dataclass(frozen=True)
class Problem:
    path: tuple[str | int, ...]
    message: str
    line: int | None = None

    def where(self) -> str:
        out = ""
        for part in self.path:
            out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
        return out


class ConfigError(Exception):
    """An invalid configuration file; `problems` lists every issue found."""

    def __init__(self, path: Path, problems: list[Problem]):
        self.path = path
        self.problems = problems
        super().__init__(self.render())

    def render(self) -> str:
        lines = []
        for problem in self.problems:
            place = f"{self.path}:{problem.line}" if problem.line else str(self.path)
            field_path = problem.where()
            lines.append(f"{place}: {field_path + ': ' if field_path else ''}{problem.message}")
        return "\n".join(lines)


def load_config(path: str | Path) -> Config:
    """Read and validate a targets file; raises ConfigError with every problem found."""
    path = Path(path)
    try:
        source = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(path, [Problem((), "file not found; create it or pass --config PATH "
                                             "(see README: Configuration)")]) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(path, [Problem((), f"cannot read: {error}")]) from None
    return parse_config(source, path)


def parse_config(source: str, path: Path, environ: dict[str, str] | None = None) -> Config:
    environ = dict(os.environ) if environ is None else environ
    try:
        raw = tomllib.loads(source)
    except tomllib.TOMLDecodeError as error:
        match = re.search(r"line (\d+)", str(error))
        raise ConfigError(path, [Problem((), f"not valid TOML: {error}; fix the syntax there "
                                             "(strings in quotes, lists in [ ], each target "
                                             "under [[targets]])",
                                         int(match.group(1)) if match else None)]) from None
    problems: list[Problem] = []
    settings = _section(raw.get("settings"), ("settings",), Settings, problems, {})
    routes = {name: route for name, table in _tables(raw, "notify", problems)
              if (route := _section(table, ("notify", name), Route, problems,
                                    {"name": name}, environ)) is not None}
    targets = []
    entries = raw.get("targets", [])
    if not isinstance(entries, list):
        problems.append(Problem(("targets",), "must be an array of tables: write [[targets]]"))
        entries = []
    for index, entry in enumerate(entries):
        target = _section(entry, ("targets", index), Target, problems, {}, environ)
        if target is not None:
            targets.append(target)
            problems += _check_target(target, index, routes)
    for key in raw:
        if key not in ("settings", "notify", "targets"):
            problems.append(_unknown_key((key,), key, ("settings", "notify", "targets")))
    problems += _duplicate_ids(targets)
    problems += _check_settings(settings)
    problems += _check_routes(routes, path.parent)
    if problems:
        raise ConfigError(path, [_with_line(p, source) for p in problems])
    return Config(path=path, settings=settings or Settings(), targets=tuple(targets),
                  routes=routes)


def _tables(raw: dict, key: str, problems: list[Problem]) -> list[tuple[str, dict]]:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        problems.append(Problem((key,), f"must be a table: write [{key}.NAME]"))
        return []
    return list(value.items())


def _section(raw: Any, path: tuple[str | int, ...], kind: type, problems: list[Problem],
             extra: dict[str, Any], environ: dict[str, str] | None = None) -> Any:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        problems.append(Problem(path, "must be a table"))
        return None
    allowed = [f.name for f in fields(kind) if f.name not in extra]
    unknown = [_unknown_key(path + (key,), key, allowed) for key in raw if key not in allowed]
    if unknown:
        problems.extend(unknown)
        return None
    data = {**raw, **extra}
    if environ is not None:
        data, missing = _expand_env(data, path, environ)
        if missing:
            problems.extend(missing)
            return None
    for key in ("select", "remove", "notify", "tags", "urls", "topics", "targets", "ignore"):
        if isinstance(data.get(key), str):
            data[key] = [data[key]]
    _listify(data)
    if isinstance(data.get("sources"), list):
        data["sources"] = [_listify(dict(s)) if isinstance(s, dict) else s
                           for s in data["sources"]]
    try:
        return TypeAdapter(kind).validate_python(data)
    except ValidationError as error:
        depth = {"sources": 3} | dict.fromkeys(SETTINGS_TABLES, 2)
        problems.extend(Problem(path + tuple(e["loc"][:depth.get(e["loc"][0], 1)]),
                                _explain(e, kind)) for e in error.errors())
        return None


def _listify(data: dict) -> dict:
    for key in ("select", "remove", "notify", "tags", "urls"):
        if isinstance(data.get(key), str):
            data[key] = [data[key]]
    return data


def _explain(error: dict, kind: type) -> str:
    if error["type"] in ("unexpected_keyword_argument", "extra_forbidden"):
        nested = {**SETTINGS_TABLES, "sources": Source}.get(error["loc"][0])
        allowed = [f.name for f in fields(nested)] if nested else []
        return _unknown_key((), str(error["loc"][-1]), allowed).message
    if error["type"] == "missing":
        return f"is required in every {kind.__name__.lower()} entry"
    if error["type"] == "literal_error":
        return (f"{error['input']!r} is not allowed; use one of "
                f"{error['ctx']['expected'].replace(chr(39), '')}")
    return f"{error['msg'].lower()} (got {error['input']!r})"


def _unknown_key(path: tuple[str | int, ...], key: str, allowed: list[str] | tuple[str, ...]) \
        -> Problem:
    close = difflib.get_close_matches(str(key), allowed, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"allowed keys: {', '.join(allowed)}"
    return Problem(path, f"unknown key {key!r}; {hint}")


def _expand_env(data: dict, path: tuple, environ: dict[str, str]) -> tuple[dict, list[Problem]]:
    """Expand ${VAR} in Apprise URLs and header values; report unset variables by name.

    Inside a URL the value is percent-encoded, so a password may hold `@`, `/`, `#` or `:`
    (Apprise decodes it); a reference that starts the URL holds a whole URL and is inserted
    as is. `$${` is a literal `${`.
    """
    missing: list[Problem] = []

    def expand(value: str, where: tuple, in_url: bool) -> str:
        def one(match: re.Match) -> str:
            escaped, name = match.groups()
            if escaped:
                return match.group(0)[1:]
            if name not in environ:
                missing.append(Problem(where, f"environment variable {name} is not set "
                                              "(export it or remove the reference)"))
                return ""
            if in_url and match.start() > 0:
                return quote(environ[name], safe="")
            return environ[name]
        return ENV_REFERENCE.sub(one, value)

    out = dict(data)
    if isinstance(out.get("urls"), list | str):
        urls = out["urls"] if isinstance(out["urls"], list) else [out["urls"]]
        out["urls"] = [expand(u, path + ("urls",), True) if isinstance(u, str) else u
                       for u in urls]
    if isinstance(out.get("headers"), dict):
        out["headers"] = {k: expand(v, path + ("headers", k), False) if isinstance(v, str)
                          else v for k, v in out["headers"].items()}
    return out, missing


def _check_target(target: Target, index: int, routes: dict[str, Route]) -> list[Problem]:
    problems = []
    at = ("targets", index)
    if not SLUG.match(target.id):
        problems.append(Problem(at + ("id",), f"{target.id!r} is not a slug: use lowercase "
                                              "letters, digits, '-', '_' or '.'"))
    if target.schedule is not None:
        try:
            parse_schedule(target.schedule)
        except ScheduleError as error:
            problems.append(Problem(at + ("schedule",), str(error)))
    for pattern in target.ignore:
        try:
            re.compile(pattern)
        except re.error as error:
            problems.append(Problem(at + ("ignore",), f"invalid regular expression {pattern!r}: "
                                                      f"{error}"))
    problems += _header_problems(target, at)
    for key, url in [("url", target.url)] + [(f"sources[{i}].url", s.url)
                                             for i, s in enumerate(target.sources)]:
        if not re.match(r"^https?://[^/\s]+", url):
            problems.append(Problem(at + (key,), f"{url!r} is not an http(s) URL"))
    selectors = [(key, selector) for key in ("select", "remove", "wait_for")
                 for selector in _selectors(getattr(target, key))]
    selectors += [(f"sources[{i}].{key}", selector) for i, source in enumerate(target.sources)
                  for key in ("select", "remove", "wait_for")
                  for selector in _selectors(getattr(source, key))]
    for key, selector in selectors:
        why = selector.problem() if isinstance(selector, RangeSelector) else None
        if why:
            problems.append(Problem(at + (key,), why))
            continue
        for css in _css_of(selector):
            why = check_selector(css)
            if why:
                problems.append(Problem(at + (key,), f"invalid CSS selector {css!r}: {why}"))
    for name in target.notify:
        if name not in routes:
            known = ", ".join(routes) or "none defined"
            problems.append(Problem(at + ("notify",), f"no route named {name!r} "
                                                      f"(routes: {known}); add [notify.{name}]"))
    return problems


def _header_problems(target: Target, at: tuple[str | int, ...]) -> list[Problem]:
    """Headers HTTP cannot carry, as every fetch would refuse them (the value is never quoted:
    it may be a secret)."""
    return [Problem(at + ("headers", name), why) for name, value in target.headers.items()
            if (why := unsendable_header(name, value))]


def _check_routes(routes: dict[str, Route], folder: Path) -> list[Problem]:
    problems = []
    for name, route in routes.items():
        if route.config and not (folder / Path(route.config).expanduser()).is_file():
            problems.append(Problem(("notify", name, "config"), f"Apprise configuration file "
                                    f"{route.config!r} not found (relative paths start at the "
                                    "targets file's folder)"))
        for index, url in enumerate(route.urls):
            why = url_problem(url)
            if why:
                problems.append(Problem(("notify", name, "urls"), f"URL {index + 1} {why}"))
        if route.digest is not None:
            try:
                parse_digest(route.digest)
            except ScheduleError as error:
                problems.append(Problem(("notify", name, "digest"), str(error)))
        if not route.urls and not route.config:
            problems.append(Problem(("notify", name), "has no urls (or config); add "
                                                      "urls = [\"mailtos://…\"]"))
    return problems


def _check_settings(settings: Settings | None) -> list[Problem]:
    if settings is None:
        return []
    problems = []
    for key, check in (("schedule", parse_schedule), ("timezone", parse_timezone)):
        try:
            check(getattr(settings, key))
        except ScheduleError as error:
            problems.append(Problem(("settings", key), str(error)))
    why = unsendable_header("User-Agent", settings.user_agent)
    if why:
        problems.append(Problem(("settings", "user_agent"), why))
    for topic, patterns in settings.lexicon.items():
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as error:
                problems.append(Problem(("settings", "lexicon", topic),
                                        f"invalid regular expression {pattern!r}: {error}"))
    return problems


def _selectors(value: tuple[Selector, ...] | str | None) -> tuple[Selector, ...]:
    return (value,) if isinstance(value, str) else tuple(value or ())


def _css_of(selector: Selector) -> list[str]:
    if isinstance(selector, str):
        return [selector]
    return [css for css in (selector.startBefore, selector.startAfter, selector.endBefore,
                            selector.endAfter) if css]


def _duplicate_ids(targets: list[Target]) -> list[Problem]:
    seen: dict[str, int] = {}
    problems = []
    for index, target in enumerate(targets):
        if target.id in seen:
            problems.append(Problem(("targets", index, "id"),
                                    f"duplicate id {target.id!r} (also targets[{seen[target.id]}])"))
        seen.setdefault(target.id, index)
    return problems


def _with_line(problem: Problem, source: str) -> Problem:
    if problem.line is not None:
        return problem
    return Problem(problem.path, problem.message, _locate(source, problem.path))


_HEADER = re.compile(r"^\s*\[(\[?)\s*([^\]]+?)\s*\]")


def _locate(source: str, path: tuple[str | int, ...]) -> int | None:
    """Best-effort line number of a field path in the TOML source: the deepest table header
    on the path ([settings.browser], the n-th [[targets]] or [[targets.sources]] in it), then
    the key under it (a key written inline, as in `lexicon = {...}`, is found by its name)."""
    lines = source.splitlines()
    headers = [(i, m.group(2).replace('"', "").replace("'", "").replace(" ", ""),
                bool(m.group(1))) for i, line in enumerate(lines) if (m := _HEADER.match(line))]
    start, scope_end, rest = -1, len(lines), list(path)
    name: list[str] = []
    for position, part in enumerate(path):
        if isinstance(part, int):
            continue
        name.append(str(part))
        indexed = position + 1 < len(path) and isinstance(path[position + 1], int)
        found = [i for i, dotted, array in headers if dotted == ".".join(name)
                 and array == indexed and start < i < scope_end]
        if indexed:
            if path[position + 1] >= len(found):
                break
            found = found[path[position + 1]:]
        if not found:
            if indexed:
                break
            continue
        start = found[0]
        scope_end = next((i for i, dotted, _ in headers if i > start
                          and not dotted.startswith(".".join(name) + ".")), len(lines))
        rest = list(path[position + (2 if indexed else 1):])
    body_end = next((i for i, _, _ in headers if i > start), len(lines))
    if rest:
        key = re.compile(rf"^\s*[\"']?{re.escape(str(rest[0]))}[\"']?\s*[=.]")
        for i in range(start + 1, body_end):
            if key.match(lines[i]):
                return i + 1
    return start + 1 if start >= 0 else None
