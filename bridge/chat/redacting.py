"""The one outbound chokepoint: every text that leaves the box for the chat is redacted here.

Callers redact at render time too (the mirror's tool lines, alerts' pane lines), but a feature
that forgets (an approval's command, a question's options, a modal's label, a reply to
``/agent``) must not leak a secret because of it. :func:`bridge.chat.factory.make_backend`
wraps every backend it makes in :class:`RedactingBackend`, and nothing else constructs a raw
one (a test checks the import graph), so each way out passes :func:`redact` exactly here:

* ``post``: the text (a message, or a file upload's content), every string inside its blocks,
  and the upload's file name (Slack's title is built from it);
* ``update``: the text and the blocks;
* ``notify_user`` (ephemeral messages);
* ``open_view``: the whole modal;
* the replies of ``command_handler`` (``/agent``) and ``on_action`` (a click's private note),
  which the backend sends itself: both handlers are wrapped when they are set.

``react`` (an emoji name of ours), ``delete``, ``reserve``, ``find_posted`` and
``resolve_channels`` carry no text for people and pass through.

Block Kit trees (blocks, views) are walked whole: every string is redacted except the values of
:data:`ID_KEYS`. Those are ids the channel side routes by (``q:12:allow``, ``stuck-web``,
element types and styles); they are built by our code from row ids and agent slugs, never from
what an agent printed, and a marker in one would break the click it names. Everything else is
redacted, including what people never see but that still leaves the box: a button's ``value``
(an option's label in a question), a modal's ``private_metadata``, URLs. Values are not ids
here: the answers side reads a click from its ``action_id``, so a redacted option label costs
nothing but the label.

Idempotent redaction makes the double pass harmless; its cost is kept off the event loop for big
texts (a long upload can take a tenth of a second of regex work), and short ones go inline,
where the redactor's needles skip almost every rule.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from bridge.chat.delegate import DelegatingBackend
from bridge.chat.protocol import (
    Action,
    Outgoing,
    Posted,
)
from bridge.render.redact import redact

ID_KEYS = frozenset({"type", "action_id", "block_id", "callback_id", "style", "external_id"})
"""Block Kit keys whose string values are routing ids, never shown text (see the module doc)."""

THREAD_ABOVE = 4000
"""Characters of outgoing text above which redaction runs in a worker thread."""


def redact_tree(node: Any) -> Any:
    """A copy of a Block Kit tree (blocks, a view) with every shown or sent string redacted."""
    if isinstance(node, str):
        return redact(node)
    if isinstance(node, Mapping):
        return {
            key: value if key in ID_KEYS and isinstance(value, str) else redact_tree(value)
            for key, value in node.items()
        }
    if isinstance(node, list | tuple):
        return [redact_tree(item) for item in node]
    return node


def _size(node: Any) -> int:
    if isinstance(node, str):
        return len(node)
    if isinstance(node, Mapping):
        return sum(_size(v) for v in node.values())
    if isinstance(node, list | tuple):
        return sum(_size(v) for v in node)
    return 0


async def _off_loop_if_big(node: Any) -> Any:
    if _size(node) > THREAD_ABOVE:
        return await asyncio.to_thread(redact_tree, node)
    return redact_tree(node)


def redact_outgoing(msg: Outgoing) -> Outgoing:
    """``msg`` with its text, blocks and file name redacted (ids and event ids untouched)."""
    return dataclasses.replace(
        msg,
        text=redact(msg.text),
        filename=redact(msg.filename) if msg.filename else msg.filename,
        blocks=tuple(redact_tree(block) for block in msg.blocks),
    )


class RedactingBackend(DelegatingBackend):
    """The backend everything in the runner talks to (see the module doc); owned by the loop."""

    async def _handle_command(self, user: str, channel: str, text: str) -> str:
        reply = await super()._handle_command(user, channel, text)
        return str(await _off_loop_if_big(reply))

    async def _handle_action(self, action: Action) -> str | None:
        note = await super()._handle_action(action)
        return None if note is None else str(await _off_loop_if_big(note))

    async def post(self, msg: Outgoing) -> Posted:
        if _size((msg.text, msg.blocks)) > THREAD_ABOVE:
            clean = await asyncio.to_thread(redact_outgoing, msg)
        else:
            clean = redact_outgoing(msg)
        return await self._inner.post(clean)

    async def update(
        self, channel: str, ref: str, text: str, blocks: Sequence[Mapping[str, Any]] | None = None
    ) -> None:
        clean_text, clean_blocks = await _off_loop_if_big((text, blocks))
        await self._inner.update(channel, ref, clean_text, clean_blocks)

    async def open_view(self, trigger_id: str, view: Mapping[str, Any]) -> None:
        await self._inner.open_view(trigger_id, await _off_loop_if_big(view))

    async def notify_user(self, channel: str, user: str, text: str) -> None:
        await self._inner.notify_user(channel, user, await _off_loop_if_big(text))
