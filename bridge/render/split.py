"""Splitting a long message into Slack-sized chunks without breaking its markup.

A cut never lands inside a link, an entity or a backtick run, and an open code fence is closed
at the end of one chunk and reopened at the start of the next.
"""

from __future__ import annotations

from bridge.render.markdown import ENTITY_AT, FENCE


def _safe_cut(text: str, start: int, cut: int) -> int:
    """Move ``cut`` back out of a ``<...>`` link, an ``&...;`` entity, then a backtick run (in
    escaped mrkdwn ``<`` and ``&`` only open those; each move lands where earlier checks hold)."""
    lt = text.rfind("<", start, cut)
    if lt >= start and text.find(">", lt, cut) == -1 and text.find(">", cut) != -1:
        cut = lt
    amp = text.rfind("&", max(start, cut - 10), cut)
    if amp >= start and (m := ENTITY_AT.match(text, amp)) and m.end() > cut:
        cut = amp
    while cut > start + 1 and text[cut - 1] == "`" and cut < len(text) and text[cut] == "`":
        cut -= 1
    return cut


def _find_cut(text: str, start: int, end: int, in_fence: bool) -> int:
    """End of the chunk from ``start``, at most ``end``: after a paragraph, line or space (in
    that order if past the first third of the window, else the latest), else hard. Never just
    after an opening fence (an empty code block): then before its backtick run, or hard."""
    if end >= len(text):
        return len(text)
    floor = start + (end - start) // 3
    found = [text.rfind(sep, start, end) + len(sep) for sep in ("\n\n", "\n", " ")]
    found = [cut for cut, sep in zip(found, (2, 1, 1), strict=True) if cut - sep >= start]
    found.sort(key=lambda c: (c <= floor, 0 if c > floor else -c))
    cut = next((s for c in [*found, end] if (s := _safe_cut(text, start, c)) > start), end)
    head = text[start:cut].rstrip("\n")
    if head.endswith(FENCE) and in_fence != (text.count(FENCE, start, cut) % 2 == 1):
        run = len(head) - len(head.rstrip("`"))
        cut = start + len(head) - run if len(head) > run else _safe_cut(text, start, end)
    return cut if cut > start else end


def split_message(text: str, limit: int = 3500) -> list[str]:
    """Split mrkdwn into chunks of at most ``limit`` chars, closing and reopening code fences."""
    if limit < 16:
        raise ValueError("limit must be at least 16")
    chunks: list[str] = []
    pos, in_fence = 0, False
    while pos < len(text):
        prefix = FENCE + "\n" if in_fence else ""
        for reserve in (0, 4):  # room for a closing fence, only if the first try needs one
            end = pos + limit - len(prefix) - reserve
            cut = _find_cut(text, pos, end, in_fence)
            piece = text[pos:cut]
            ends_in_fence = in_fence != (piece.count(FENCE) % 2 == 1)
            suffix = ("" if piece.endswith("\n") else "\n") + FENCE if ends_in_fence else ""
            if len(prefix) + len(piece) + len(suffix) <= limit:
                break
        chunks.append(prefix + piece + suffix)
        pos, in_fence = cut, ends_in_fence
    return chunks
