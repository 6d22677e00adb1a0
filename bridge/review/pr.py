"""A pull request as the reviewer sees it, and the ``gh`` calls that describe one.

``gh`` is the one way this package talks to GitHub (its login, enterprise hosts and proxies are
the user's, already set up). Every call is a subprocess with a timeout, run off the event loop by
the caller; a failure is a :class:`GhError` with ``gh``'s own one-line message.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bridge.config.review import PLACEHOLDERS, ReviewConfig
from bridge.errors import AgentbridgeError

FIELDS = "number,title,url,headRefOid,baseRefName,headRefName"
_URL_RE = re.compile(r"https?://[^/\s]+/([\w.-]+/[\w.-]+)/pull/(\d+)(?:[/?#]\S*)?")
TIMEOUT = 60.0


class GhError(AgentbridgeError):
    """``gh`` failed or answered something unusable."""


class BadReference(AgentbridgeError):
    """Not a pull request number or URL."""


@dataclass(frozen=True, slots=True)
class PullRequest:
    number: int
    title: str
    url: str
    head_sha: str
    base: str
    head: str

    @classmethod
    def from_gh(cls, data: dict[str, Any]) -> PullRequest:
        try:
            return cls(
                int(data["number"]),
                str(data.get("title") or ""),
                str(data.get("url") or ""),
                str(data["headRefOid"]),
                str(data.get("baseRefName") or ""),
                str(data.get("headRefName") or ""),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise GhError(f"gh: unexpected pull request data ({exc})") from None


def parse_ref(text: str) -> tuple[int, str | None]:
    """``42``, ``#42`` or a PR URL -> (number, ``OWNER/NAME`` from the URL or None)."""
    text = text.strip().strip("<>")
    if m := _URL_RE.fullmatch(text.split("|")[0]):  # Slack wraps links as <url|label>
        return int(m.group(2)), m.group(1)
    if re.fullmatch(r"#?\d+", text):
        return int(text.lstrip("#")), None
    raise BadReference(f"{text!r} is not a pull request number or URL")


def _gh(review: ReviewConfig, args: list[str], github: str | None, *, flag: bool = True) -> Any:
    """Run ``gh`` in the template's repo (so it finds the GitHub repo from its remote), with
    ``--repo`` when one is known; parse its JSON answer."""
    repo = github or review.github
    argv = ["gh", *args, *(["--repo", repo] if repo and flag else [])]
    try:
        out = subprocess.run(
            argv, cwd=review.repo, capture_output=True, text=True, timeout=TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GhError(f"gh: {exc}") from None
    if out.returncode != 0:
        lines = (out.stderr or out.stdout).strip().splitlines()
        raise GhError(f"gh {args[0]} {args[1]}: {lines[-1] if lines else f'exit {out.returncode}'}")
    try:
        return json.loads(out.stdout)
    except json.JSONDecodeError as exc:
        raise GhError(f"gh {args[0]} {args[1]}: not JSON ({exc})") from None


def view(review: ReviewConfig, number: int, github: str | None = None) -> PullRequest:
    data = _gh(review, ["pr", "view", str(number), "--json", FIELDS], github)
    if not isinstance(data, dict):
        raise GhError("gh pr view: expected one pull request")
    return PullRequest.from_gh(data)


def listed(review: ReviewConfig) -> list[PullRequest]:
    """What the poll reviews: ``gh pr list --search <review.search>``."""
    data = _gh(review, ["pr", "list", "--search", review.search, "--json", FIELDS], None)
    if not isinstance(data, list):
        raise GhError("gh pr list: expected a list")
    return [PullRequest.from_gh(item) for item in data if isinstance(item, dict)]


def review_link(review: ReviewConfig, pr: PullRequest, since: float) -> str | None:
    """The web link of a review posted on ``pr`` at its head since ``since`` (epoch), if any.

    ``gh api`` is used because ``gh pr view --json reviews`` has no link; OWNER/NAME comes from
    the PR's own URL.
    """
    m = _URL_RE.fullmatch(pr.url)
    if m is None:
        return None
    data = _gh(review, ["api", f"repos/{m.group(1)}/pulls/{pr.number}/reviews"], None, flag=False)
    found = None
    for item in data if isinstance(data, list) else []:
        if not isinstance(item, dict) or item.get("commit_id") not in (None, pr.head_sha):
            continue
        if _epoch(item.get("submitted_at")) >= since - 60 and item.get("html_url"):
            found = str(item["html_url"])
    return found


def _epoch(stamp: Any) -> float:
    from datetime import datetime

    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def fill(task: str, pr: PullRequest, repo: Path, base_sha: str) -> str:
    """The task with ``{number}`` & co. filled in (other braces left alone)."""
    values = {
        "number": str(pr.number),
        "title": pr.title,
        "url": pr.url,
        "base": pr.base,
        "head": pr.head,
        "sha": pr.head_sha,
        "base_sha": base_sha or pr.base,
        "repo": str(repo),
    }
    assert set(values) == set(PLACEHOLDERS)
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), m.group(0)), task)
