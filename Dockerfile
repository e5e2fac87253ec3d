# policy-watcher daemon image: `watcher run` as a non-root user, Debian's headless Chromium
# (chromium-headless-shell) inside.
# A thin shell over scripts/setup.sh, the same install script CI runs.
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    UV_PYTHON_DOWNLOADS=never \
    WATCHER_CONFIG=/config/targets.toml \
    WATCHER_DB=/data/watcher.db \
    WATCHER_BROWSER_PACKAGES=chromium-headless-shell \
    PATH=/app/.venv/bin:$PATH

WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
COPY scripts/ scripts/
COPY watcher/ watcher/
RUN bash scripts/setup.sh --no-dev \
    && rm -rf /var/lib/apt/lists/* /root/.cache \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin watcher \
    && mkdir -p /data /config \
    && chown watcher /data
COPY targets.toml /config/targets.toml

USER 10001
VOLUME ["/data"]
HEALTHCHECK --interval=60s --timeout=10s --start-period=120s --retries=3 \
    CMD ["watcher", "health"]
CMD ["watcher", "run"]
