"""Files in the Slack emulator: uploads by the bot, files shared by people, downloads, lookups.

Uploads follow files_upload_v2: `files.getUploadURLExternal`, the bytes POSTed to the URL it
returns, then `files.completeUploadExternal` shares them in a channel as one message (with
`files`, `upload: true`; its event has `subtype: "file_share"`). `files.list` (filters `channel`,
`user`, `ts_from`, `ts_to`, `types`; `count`/`page` paging, newest first) and `files.info` find
them later, with the title and filename the uploader chose and, in `shares`, the channel and `ts`
of the message that shares each one: that is how a client whose upload answer was lost can tell
whether it went through and where. On real Slack the share is asynchronous: right after
`completeUploadExternal` the message may not be in `conversations.history` yet, and `shares` may
still be empty (it typically fills within a second); the emulator shares at once.

`url_private` / `url_private_download` are served like files.slack.com: only with a bot token
granted `files:read` in `Authorization: Bearer`; without the header (or with a wrong token) the
answer is a 302 to a sign-in page that answers 200 with HTML, and a token without `files:read`
gets that page at once (200, HTML): the trap real clients fall into, since neither is an error
status.
"""

from __future__ import annotations

import mimetypes
import time
from collections.abc import Sequence
from urllib.parse import quote

from aiohttp import web

from bridge.devtools.slack_emulator_apibase import ApiBase, check_text
from bridge.devtools.slack_emulator_events import message_event
from bridge.devtools.slack_emulator_model import (
    ApiError,
    Channel,
    Json,
    UploadedFile,
    int_param,
    json_param,
    thread_root,
)
from bridge.devtools.slack_emulator_scopes import DOWNLOAD as DOWNLOAD_SCOPE
from bridge.devtools.slack_emulator_state import WorkspaceState

FILE_TYPES = {
    "images": ("image/",), "pdfs": ("application/pdf",), "zips": ("application/zip",),
    "snippets": ("text/",), "spaces": ("text/markdown",), "gdocs": (),
}  # fmt: skip
"""`files.list` `types` filter, mapped onto MIME type prefixes."""

SIGNIN_PAGE = (
    "<!DOCTYPE html><html><head><title>Sign in | Slack</title></head>"
    "<body><h1>Sign in to {team}</h1><p>Enter your workspace's Slack URL.</p></body></html>"
)


TEXT_SUFFIXES = {".log": "text/plain", ".md": "text/markdown", ".diff": "text/x-diff"}


def guess_type(filename: str, content: bytes | None = None) -> str:
    """The MIME type Slack would report: by name, else text/plain for UTF-8 bytes."""
    suffix = "." + filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    found = mimetypes.guess_type(filename)[0] or TEXT_SUFFIXES.get(suffix)
    if found is None and content is not None:
        try:
            content.decode("utf-8")
            found = "text/plain"
        except UnicodeDecodeError:
            pass
    return found or "application/octet-stream"


def _of_types(f: UploadedFile, types: list[str]) -> bool:
    return any(f.mimetype.startswith(p) for t in types for p in FILE_TYPES.get(t, ()))


def share(st: WorkspaceState, ch: Channel, files: Sequence[UploadedFile], msg: Json) -> None:
    """Record that message `msg` in `ch` shares `files` (their `channels` and `shares`)."""
    for f in files:
        if ch.id not in f.channels:
            f.channels.append(ch.id)
        entry = {"channel": ch.id, "private": ch.is_private, "name": ch.name, "ts": msg["ts"]}
        if msg.get("thread_ts") and msg["thread_ts"] != msg["ts"]:
            entry["thread_ts"] = msg["thread_ts"]
        f.shares.append(entry)


def user_file_message(
    st: WorkspaceState,
    base_url: str,
    user: str,
    ch: Channel,
    files: Sequence[tuple[str, bytes]],
    text: str,
    thread_ts: str | None,
) -> tuple[Json, Json]:
    """A person shares `files` ((name, bytes) pairs) with a comment: the stored message and
    its `file_share` event. Lock held."""
    now = int(time.time())
    made = []
    for name, content in files:
        fid = st.new_id("F")
        f = UploadedFile(fid, name, len(content), content, name, user=user, created=now)
        f.mimetype = guess_type(name, content)
        st.files[fid] = f
        made.append(f)
    msg: Json = {"type": "message", "ts": st.new_ts(), "user": user, "text": check_text(text)}
    msg.update(team=st.team_id, upload=True, display_as_bot=False)
    extra: Json = {}
    if thread_ts is not None:
        msg["thread_ts"] = thread_root(ch, thread_ts)
        extra["parent_user_id"] = st.message(ch, msg["thread_ts"]).get("user")
    share(st, ch, made, msg)
    msg["files"] = [f.to_api(base_url, st.team_id) for f in made]
    st.store_message(ch, msg)
    return msg, message_event(ch, msg, subtype="file_share", **extra)


class FilesApi(ApiBase):
    """files.* methods, the upload URL and the private download URLs."""

    def add_file_routes(self, app: web.Application) -> None:
        app.router.add_post("/upload/{file_id}", self.handle_upload)
        app.router.add_get("/files-pri/{key}/{name}", self.handle_private)
        app.router.add_get("/files-pri/{key}/download/{name}", self.handle_private)
        app.router.add_get("/signin", self.handle_signin)

    def _file_api(self, f: UploadedFile) -> Json:
        return f.to_api(self.http_base, self.state.team_id)

    async def handle_upload(self, request: web.Request) -> web.Response:
        """Step two of files_upload_v2: the raw bytes POSTed to the issued `upload_url`."""
        data = await request.read()
        with self.state.lock:
            f = self.state.files.get(request.match_info["file_id"])
            if f is None:
                return web.Response(status=404, text="file not found")
            f.content = data
            self.state.touch()
        return web.Response(text=f"OK - {len(data)}")

    async def handle_private(self, request: web.Request) -> web.Response:
        """`url_private` and `url_private_download`: the bytes, for the bot token only."""
        team, _, fid = request.match_info["key"].partition("-")
        bearer = request.headers.get("Authorization", "").removeprefix("Bearer ")
        with self.state.lock:
            f = self.state.files.get(fid)
            known = team == self.state.team_id and f is not None and f.content is not None
            content, name, mimetype = (f.content, f.filename, f.mimetype) if f else (b"", "", "")
        granted = self.state.token_scopes.get(bearer)
        if granted is None:
            login = f"{self.http_base}signin?redir={quote(request.path_qs, safe='')}"
            raise web.HTTPFound(login)
        if DOWNLOAD_SCOPE not in granted:  # a real bot token, but not allowed to read files
            return await self.handle_signin(request)
        if not known:
            return web.Response(status=404, text="file not found")
        kind = "attachment" if "/download/" in request.path else "inline"
        disposition = f"{kind}; filename*=UTF-8''{quote(name, safe='')}"
        return web.Response(
            body=content, content_type=mimetype, headers={"Content-Disposition": disposition}
        )

    async def handle_signin(self, request: web.Request) -> web.Response:
        page = SIGNIN_PAGE.format(team=self.state.team_name)
        return web.Response(text=page, content_type="text/html")

    def api_files_getUploadURLExternal(self, params: Json) -> Json:
        filename = str(params.get("filename") or "")
        length = int_param(params, "length", 0)
        if not filename or length <= 0:
            raise ApiError("invalid_arguments")
        st = self.state
        with st.lock:
            fid = st.new_id("F")
            f = UploadedFile(fid, filename, length, user=st.bot_user_id, created=int(time.time()))
            f.mimetype = guess_type(filename)
            st.files[fid] = f
            st.touch()
        return {"upload_url": f"{self.http_base}upload/{fid}", "file_id": fid}

    def api_files_completeUploadExternal(self, params: Json) -> Json:
        """Step three of files_upload_v2: share the uploaded files, as one message."""
        st = self.state
        items = json_param(params.get("files") or "[]")
        if not isinstance(items, list) or not items:
            raise ApiError("invalid_arguments")
        channel = params.get("channel_id") or str(params.get("channels") or "").split(",")[0]
        with st.lock:
            ch = self._member_channel(channel) if channel else None
            files: list[UploadedFile] = []
            for item in items:
                f = st.files.get(str(item.get("id")))
                if f is None or f.content is None:
                    raise ApiError("file_not_found")
                files.append(f)
            msg = self._bot_message(str(params.get("initial_comment") or ""))
            for f, item in zip(files, items, strict=True):
                f.title = item.get("title") or f.filename
            if ch is None:
                st.touch()
                return {"files": [self._file_api(f) for f in files]}
            if params.get("thread_ts"):
                msg["thread_ts"] = thread_root(ch, params["thread_ts"])
            share(st, ch, files, msg)
            msg.update(files=[self._file_api(f) for f in files], upload=True)
            st.store_message(ch, msg)
            event = message_event(ch, msg, subtype="file_share")
            out = {"files": [self._file_api(f) for f in files]}
        self._echo(event)
        return out

    def api_files_info(self, params: Json) -> Json:
        with self.state.lock:
            f = self.state.files.get(str(params.get("file") or ""))
            if f is None or f.content is None:
                raise ApiError("file_not_found")
            return {"file": self._file_api(f), "comments": [], "response_metadata": {}}

    def api_files_list(self, params: Json) -> Json:
        """Completed files the bot can see, newest first, with Slack's page-based paging."""
        st = self.state
        count = min(max(int_param(params, "count", 100), 1), 1000)
        page = max(int_param(params, "page", 1), 1)
        ts_from, ts_to = int_param(params, "ts_from", 0), int_param(params, "ts_to", 0)
        types = [t for t in str(params.get("types") or "all").split(",") if t and t != "all"]
        with st.lock:
            channel = params.get("channel")
            cid = st.channel(str(channel)).id if channel else None
            picked = [
                f
                for f in st.files.values()
                if f.content is not None
                and (cid is None or cid in f.channels)
                and (not params.get("user") or f.user == params["user"])
                and f.created >= ts_from
                and (not ts_to or f.created <= ts_to)
                and (not types or _of_types(f, types))
            ]
            picked.sort(key=lambda f: (f.created, f.id), reverse=True)
            chunk = picked[(page - 1) * count : page * count]
            pages = max((len(picked) + count - 1) // count, 1)
            paging = {"count": count, "total": len(picked), "page": page, "pages": pages}
            return {"files": [self._file_api(f) for f in chunk], "paging": paging}
