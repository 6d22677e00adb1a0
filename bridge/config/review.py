"""``review:`` on an agent: the agent is a PR-reviewer template, never run itself.

Each review request (Slack ``/agent review``, ``agentbridge review``, or the ``gh`` poll) makes a
one-shot copy of the template in a git worktree of the pull request's head; see
:mod:`bridge.review` for the run and ``docs/pr-review.md`` for the whole story. This module is
only the schema: what a template says, checked once when agents.yaml is loaded.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationInfo, field_validator

from bridge.config.values import expand_vars

DEFAULT_TASK = (
    "Review pull request #{number} ({title}, {url}): {head} into {base}, head commit {sha}. "
    "The work tree you are in is checked out at that commit. Read the change "
    "(`git diff {base_sha}...HEAD` or `gh pr diff {number}`), the code around it and the tests "
    "that cover it; run them where you can. Then post your review on the pull request with "
    "`gh pr review {number} --comment --body-file <file>`: specific, with file, line, why and a "
    "fix for each point. End with a two-line summary here."
)
"""Used when a template gives no ``task``."""

PLACEHOLDERS = ("number", "title", "url", "base", "head", "sha", "base_sha", "repo")
"""What a task may use, written ``{number}``; anything else in braces is left as it is."""

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def seconds(value: Any) -> Any:
    """``90``, ``"90s"``, ``"5m"``, ``"2h"``, ``"1d"`` -> seconds (a float)."""
    if isinstance(value, bool):
        return value  # let pydantic reject it
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and (m := _DURATION_RE.fullmatch(value.strip().lower())):
        return float(m.group(1)) * _UNITS[m.group(2)]
    raise ValueError(f"{value!r} is not a duration (seconds, or like 90s, 5m, 2h, 1d)")


Duration = Annotated[float, BeforeValidator(seconds)]


def _path(value: Any, info: ValidationInfo) -> Path:
    """``~`` and ``${VAR}`` expanded; relative to the config file's directory."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a directory path")
    ctx = info.context if isinstance(info.context, dict) else {}
    environ = ctx.get("environ", os.environ)
    text = expand_vars(value, environ)
    if (text == "~" or text.startswith("~/")) and environ.get("HOME"):
        text = environ["HOME"] + text[1:]
    path = Path(os.path.expanduser(text))
    base = ctx.get("base_dir")
    return (base if isinstance(base, Path) else Path.cwd()) / path


class ReviewConfig(BaseModel):
    """A reviewer template's settings (``agents[].review``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    repo: Path
    """A local clone of the reviewed repository; pull requests are fetched into it from
    ``remote`` as ``refs/pull/N/head`` (GitHub's name for a PR's head)."""
    worktrees: Path
    """Where each review's git worktree is made (created if missing), one folder per review."""
    keep_for: Duration = 86400.0
    """How long a finished review's worktree and spawned definition are kept (``1d``, ``2h``,
    ``30s`` or seconds); ``agentbridge review --clean`` removes them at once."""
    task: str = DEFAULT_TASK
    """The reviewer's task; ``{number}``, ``{title}``, ``{url}``, ``{base}``, ``{head}``,
    ``{sha}``, ``{base_sha}`` and ``{repo}`` are filled in from the pull request."""
    poll: Duration | None = None
    """Ask ``gh`` for pull requests to review this often (``5m``); none: only on request."""
    search: str = "review-requested:@me"
    """The ``gh pr list --search`` query the poll uses."""
    rereview: bool = True
    """Review a polled pull request again when its head commit moves."""
    remote: str = "origin"
    """The remote of ``repo`` that pull requests are fetched from."""
    github: str | None = None
    """``OWNER/NAME`` for ``gh --repo``; none: ``gh`` works it out from ``repo``'s remote."""

    @field_validator("repo", mode="before")
    @classmethod
    def _repo(cls, value: Any, info: ValidationInfo) -> Path:
        path = _path(value, info)
        if not (path / ".git").exists() and not (path / "HEAD").is_file():
            raise ValueError(f"{path} is not a git repository")
        return path.resolve()

    @field_validator("worktrees", mode="before")
    @classmethod
    def _worktrees(cls, value: Any, info: ValidationInfo) -> Path:
        path = _path(value, info)
        if path.exists() and not path.is_dir():
            raise ValueError(f"{path} is not a directory")
        return path

    @field_validator("keep_for", "poll")
    @classmethod
    def _positive(cls, value: float | None) -> float | None:
        if value is not None and value <= 0:
            raise ValueError("must be more than 0 seconds")
        return value

    @field_validator("github")
    @classmethod
    def _owner_name(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[\w.-]+/[\w.-]+", value):
            raise ValueError(f"{value!r} must be OWNER/NAME")
        return value

    @field_validator("task")
    @classmethod
    def _task(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value
