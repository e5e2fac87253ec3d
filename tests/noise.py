"""A synthetic noise generator: the same page re-rendered with random markup-only changes.

What it varies is what real sites change between two fetches without changing a word of
their documents: class names and build ids, data attributes, script bundles and JSON
blobs, comments, whitespace and non-breaking spaces, inline wrappers, tracking parameters.
"""

from __future__ import annotations

import random
import re

_TEXT = re.compile(r">([^<>]+)<")
_TAG = re.compile(r"<(div|p|span|li|section|ul|td|a|h[1-6])(?=[\s>])")
_CLASS = re.compile(r'class="([^"]*)"')
_HREF = re.compile(r'href="(https?://[^"?#]+)"')
_WORD = re.compile(r"(?<![&#\w])[^\W\d_]{4,}(?![\w;])")


def noisy(html: str, rng: random.Random) -> str:
    token = lambda: f"{rng.getrandbits(32):08x}"  # noqa: E731 - a tiny local helper
    html = _TEXT.sub(lambda m: ">" + _wrap_word(_respace(m.group(1), rng), rng, token) + "<",
                     html)
    html = _TAG.sub(lambda m: f"<{m.group(1)} data-v-{token()}=\"\"" if rng.random() < 0.3
                    else f"<{m.group(1)}", html)
    html = _CLASS.sub(lambda m: f'class="{m.group(1)} css-{token()}"' if rng.random() < 0.5
                      else m.group(0), html)
    html = _HREF.sub(lambda m: f'href="{m.group(1)}?utm_source={token()}&gclid={token()}"'
                     if rng.random() < 0.5 else m.group(0), html)
    bundle = (f'<script src="/_next/static/chunks/app-{token()}.js"></script>'
              f'<script id="__NEXT_DATA__" type="application/json">{{"buildId":"{token()}",'
              f'"props":{{"t":{rng.random()}}}}}</script><!-- build {token()} -->')
    html = html.replace("</head>", bundle + "</head>", 1)
    return html.replace("</body>", f"<script>window.__t='{token()}'</script></body>", 1)


def _wrap_word(text: str, rng: random.Random, token) -> str:
    if rng.random() < 0.3 and text.strip():
        return _WORD.sub(lambda m: f'<span class="w-{token()}">{m.group(0)}</span>', text,
                         count=1)
    return text


def _respace(text: str, rng: random.Random) -> str:
    return re.sub(r"[ \t\n]+", lambda m: rng.choice((" ", "\n  ", "\t", " \n", "&nbsp;"))
                  if rng.random() < 0.3 else m.group(0), text)
