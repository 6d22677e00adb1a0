"""Small, defensive helpers shared by the transcript parsers.

Transcript formats are explicitly unstable (see FORMATS.md), and one crashing line would stop the
mirror of a whole agent, so every accessor here answers "not there" instead of raising when a
field is missing or has the wrong JSON type. Everything is linear in the size of the line: a
single 10 MB tool output must not stall the tailer.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterable
from typing import Any

from runtimes.events import Event, LineResult

JsonObject = dict[str, Any]

_BAD = LineResult(bad=True)


def load_object(line: bytes) -> JsonObject | None:
    """Decode one transcript line into a JSON object, or None when it is not one.

    Tolerates a trailing ``\\r``/``\\n``, a UTF-8 BOM and invalid UTF-8 (replaced, so a line
    cut inside a multi-byte character still parses when the JSON itself is complete).
    Deeply nested input raises RecursionError inside :mod:`json`; it counts as malformed.
    """
    try:
        text = line.rstrip(b"\r\n").decode("utf-8", errors="replace").lstrip("\ufeff")
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def guarded_parse(
    line: bytes,
    offset: int,
    source: str,
    parse: Callable[[JsonObject, int, str], Iterable[Event]],
    log: logging.Logger,
    classify: Callable[[JsonObject], str | None] | None = None,
) -> LineResult:
    """Run a record parser so that nothing escapes: the tailer must survive any input.

    The parsers themselves never raise by construction (typed accessors below); this is the last
    line of defence against a bug. A line that trips it is reported as bad and logged with its
    position, so the bug is visible rather than silently dropping the line. Both CLIs stamp
    every record with a top-level ``timestamp``; it is copied onto each event here, once.
    ``classify`` names a record type the parser does not know (``LineResult.unknown``).
    """
    try:
        obj = load_object(line)
        if obj is None:
            return _BAD
        events = tuple(parse(obj, offset, source))
        ts = as_str(obj.get("timestamp"))
        if ts is not None:
            events = tuple(dataclasses.replace(e, timestamp=e.timestamp or ts) for e in events)
        return LineResult(events=events, unknown=classify(obj) if classify else None)
    except Exception:
        log.exception("transcript parser failed on %s at byte %s", source, offset)
        return _BAD


def as_dict(value: object) -> JsonObject | None:
    return value if isinstance(value, dict) else None


def as_list(value: object) -> list[Any] | None:
    return value if isinstance(value, list) else None


def as_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def as_int(value: object) -> int | None:
    """An integer field; JSON ``true`` is not a count, so bools are rejected."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def nonempty(value: object) -> str | None:
    """A string field that carries something other than whitespace."""
    return value if isinstance(value, str) and value.strip() else None


def present(**fields: Any) -> dict[str, Any]:
    """The given fields minus those that are None: meta dicts without noise."""
    return {key: value for key, value in fields.items() if value is not None}


def short_hash(text: str) -> str:
    """First 12 hex digits of the SHA-1 of ``text``, for content-derived ids.

    ``surrogatepass`` because JSON escapes may produce lone surrogates that plain UTF-8 refuses.
    """
    return hashlib.sha1(text.encode("utf-8", errors="surrogatepass")).hexdigest()[:12]


def block_texts(content: object, *, image_marker: str | None = None) -> list[str]:
    """The ``text`` of every content block in a list (or the string itself).

    Covers every text block flavour the CLIs write (``text``, ``input_text``, ``output_text``,
    Codex's ``Text``) by looking at the ``text`` key rather than the block type. Bare strings in
    the list count too (Codex reasoning summaries). Image blocks become ``image_marker`` when
    given, so a prompt that is only a screenshot still says something.
    """
    if isinstance(content, str):
        return [content]
    parts: list[str] = []
    for block in as_list(content) or ():
        if isinstance(block, str):
            parts.append(block)
            continue
        obj = as_dict(block)
        if obj is None:
            continue
        text = as_str(obj.get("text"))
        if text is not None:
            parts.append(text)
        elif image_marker is not None and "image" in (as_str(obj.get("type")) or "").lower():
            parts.append(image_marker)
    return parts


def joined_text(content: object, *, image_marker: str | None = None) -> str:
    return "\n".join(block_texts(content, image_marker=image_marker))


# ``<tag>`` or ``<tag attr="...">`` at the very start; tag names seen include spaces
# (``<permissions instructions>``), dashes and underscores.
_LEADING_TAG = re.compile(r"\s*<([A-Za-z][\w .:-]{0,60})[\s>]")


def is_injected_wrapper(text: str, known_tags: frozenset[str]) -> bool:
    """Whether ``text`` is harness-injected markup rather than something a human typed.

    True when it opens with one of ``known_tags``, or when the whole text is a single
    ``<tag>...</tag>`` element (how both CLIs wrap context they inject: environment, AGENTS.md,
    aborted-turn notes, slash-command echoes). A human prompt that merely mentions markup
    (``fix the <div> in header.html``) does not match either rule.
    """
    match = _LEADING_TAG.match(text)
    if match is None:
        return False
    tag = match.group(1).strip()
    if tag in known_tags:
        return True
    return text.rstrip().endswith(f"</{tag}>")
