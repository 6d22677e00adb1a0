"""Slack message markup -> the plain text a person meant.

Slack sends ``<@U123>`` for mentions, ``<https://x|label>`` for links, ``<#C1|name>`` for
channels, ``<!here>`` for broadcasts, and escapes ``& < >`` as entities. An agent should read
what the person typed, not the wire format.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_TOKEN = re.compile(r"<([^<>]*)>")


def unescape(text: str, user_name: Callable[[str], str | None] = lambda _u: None) -> str:
    def replace(match: re.Match[str]) -> str:
        inner = match.group(1)
        target, _, label = inner.partition("|")
        if target.startswith("@"):
            name = label or user_name(target[1:]) or target[1:]
            return f"@{name}"
        if target.startswith("#"):
            return f"#{label or target[1:]}"
        if target.startswith("!"):
            word = target[1:].split("^")[0]
            return f"@{label or word}"
        if label and label != target:
            return f"{label} ({target})"
        return target.removeprefix("mailto:") if target.startswith("mailto:") else target

    plain = _TOKEN.sub(replace, text)
    return plain.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
