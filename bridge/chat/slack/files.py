"""Downloading a file shared in Slack (``url_private_download``) with the bot token.

The token goes only to Slack's own hosts (or the configured API host, the emulator): a file URL
pointing anywhere else is refused rather than handed the bot token. The size limit is enforced
twice, on the declared length and while reading, so a lying header cannot fill the disk.

Slack does not fail a download it refuses: without the ``files:read`` scope (or without the
token) it answers its sign-in page, HTTP 200 ``text/html``, directly or after a redirect. So an
HTML answer that is not a file Slack serves as one (a file comes with ``Content-Disposition``;
the page does not) is :class:`FileNotServed`, naming the missing scope, rather than the page
saved under the user's file name.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient

from bridge.chat.protocol import FileNotServed, FileTooLarge

SIGN_IN = (
    "Slack answered with its sign-in page instead of the file: the bot token may not read "
    "files (the Slack app lacks the files:read scope; add it, as in "
    "deploy/slack-app-manifest.yaml, and reinstall the app)"
)


def token_may_go_to(url: str, api_base: str) -> bool:
    host = urlsplit(url).hostname or ""
    api_host = urlsplit(api_base).hostname or ""
    return bool(host) and (host == api_host or host == "slack.com" or host.endswith(".slack.com"))


async def download(client: AsyncWebClient, url: str, limit: int) -> bytes:
    """At most ``limit`` bytes of the file at ``url``; :class:`FileTooLarge` past that."""
    if not token_may_go_to(url, client.base_url):
        raise ValueError(f"refusing to send the bot token to {urlsplit(url).hostname or url!r}")
    headers = {"Authorization": f"Bearer {client.token}"}
    timeout = aiohttp.ClientTimeout(total=300)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.get(url, headers=headers) as resp,
    ):
        resp.raise_for_status()
        if is_sign_in(resp.content_type, resp.headers.get("Content-Disposition")):
            raise FileNotServed(SIGN_IN)
        if resp.content_length is not None and resp.content_length > limit:
            raise FileTooLarge(f"{resp.content_length} bytes")
        data = bytearray()
        async for chunk in resp.content.iter_chunked(65536):
            data += chunk
            if len(data) > limit:
                raise FileTooLarge(f"over {limit} bytes")
        return bytes(data)


def is_sign_in(content_type: str, disposition: str | None) -> bool:
    """An HTML answer that does not come as a file (no ``Content-Disposition``): Slack's
    sign-in page. An HTML file a person shared still comes with its disposition."""
    return content_type.lower() in ("text/html", "application/xhtml+xml") and not disposition
