"""Downloading a file shared in Slack (``url_private_download``) with the bot token.

The token goes only to Slack's own hosts (or the configured API host, the emulator): a file URL
pointing anywhere else is refused rather than handed the bot token. The size limit is enforced
twice, on the declared length and while reading, so a lying header cannot fill the disk.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient

from bridge.chat.protocol import FileTooLarge


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
        if resp.content_length is not None and resp.content_length > limit:
            raise FileTooLarge(f"{resp.content_length} bytes")
        data = bytearray()
        async for chunk in resp.content.iter_chunked(65536):
            data += chunk
            if len(data) > limit:
                raise FileTooLarge(f"over {limit} bytes")
        return bytes(data)
