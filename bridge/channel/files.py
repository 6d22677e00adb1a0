"""Files shared with a steering message -> a per-agent inbox the agent is told about.

The inbox is ``<state dir>/inbox/<slug>/``, outside the agent's work tree, so a shared file can
never be committed by accident or overwrite a file of the project. Each file keeps a sanitised
form of its name (no directories, no leading dots, only ``[A-Za-z0-9._-]``, at most 100
characters) behind the message ts and the file id, so two files of the same name never collide
and a redelivered message writes the same path again. A file over the size limit, or one whose
download fails, is not saved; the agent is told which and why, and the message's text still
goes through (a person can share the file again, but a lost message is silent). An answer that
is not the file (Slack's sign-in page, when the app may not read files) is never saved under the
file's name: the agent is told what Slack answered and which scope is missing.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from pathlib import Path

from bridge.chat.protocol import Attachment, FileNotServed, FileTooLarge
from runtimes.jsonfile import atomic_write_bytes

log = logging.getLogger("agentbridge.inbound")

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
MAX_NAME = 100


def safe_name(name: str) -> str:
    """A file name that stays a plain file in the inbox, whatever the sender called it."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = _UNSAFE.sub("_", base).lstrip(".-_")
    cleaned = re.sub(r"\.{2,}", ".", cleaned)
    if len(cleaned) > MAX_NAME:
        stem, dot, ext = cleaned.rpartition(".")
        keep = ext[:10] if dot and stem else ""
        cleaned = cleaned[: MAX_NAME - len(keep) - 1].rstrip(".") + ("." + keep if keep else "")
    return cleaned or "file"


def inbox_path(inbox: Path, slug: str, ref: str, attachment: Attachment) -> Path:
    prefix = _UNSAFE.sub("_", f"{ref}-{attachment.file_id}")
    return inbox / slug / f"{prefix}-{safe_name(attachment.name)}"


def _write(path: Path, data: bytes) -> None:
    """Atomically (a reader never sees half a file), private to the runner's user."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write_bytes(path, data, mode=0o600, sync=True)


async def save_files(
    inbox: Path, slug: str, ref: str, files: Sequence[Attachment], limit: int
) -> list[str]:
    """Download every file into the agent's inbox; one line per file for the prompt."""
    lines: list[str] = []
    for attachment in files:
        label = safe_name(attachment.name)
        if limit <= 0 or attachment.size > limit:
            lines.append(
                f"- {label}: not downloaded ({attachment.size} bytes; the limit is "
                f"inbound_file_max_bytes = {limit})"
            )
            continue
        path = inbox_path(inbox, slug, ref, attachment)
        try:
            data = await attachment.fetch(limit)
        except FileTooLarge:
            lines.append(f"- {label}: not downloaded (over inbound_file_max_bytes = {limit})")
            continue
        except FileNotServed as err:  # the answer was not the file: say why, save nothing
            log.error("%s: %s (%s) not downloaded: %s", slug, label, attachment.file_id, err)
            lines.append(f"- {label}: not downloaded: {err}")
            continue
        except Exception as err:  # one file's failure must not lose the message
            log.warning("%s: could not download %s (%s): %s", slug, label, attachment.file_id, err)
            lines.append(f"- {label}: could not be downloaded ({type(err).__name__})")
            continue
        await asyncio.to_thread(_write, path, data)
        lines.append(f"- {path} ({len(data)} bytes)")
    return lines


def with_files(text: str, lines: Sequence[str]) -> str:
    """The pasted prompt: the person's text, then where their files are."""
    if not lines:
        return text
    head = "Files shared with this message (saved outside your work tree):"
    body = "\n".join([head, *lines])
    return f"{text}\n\n{body}" if text.strip() else body
