"""A pull request's head in a worktree of its own, and the worktree gone again.

The head is fetched as GitHub publishes it, ``refs/pull/N/head`` on the template's remote, into
a ref of our own (``refs/agentbridge/pr/N``), so the user's branches and checkout are never
touched. The worktree is detached at the head commit: the reviewer reads, builds and tests
there without affecting anything else.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from pathlib import Path

from bridge.errors import AgentbridgeError

TIMEOUT = 300.0


class GitError(AgentbridgeError):
    """A git command failed; the message is git's last line."""


def _git(repo: Path, *args: str) -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(repo), *args],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GitError(f"git {args[0]}: {exc}") from None
    if out.returncode != 0:
        lines = (out.stderr or out.stdout).strip().splitlines()
        raise GitError(f"git {args[0]} in {repo}: {lines[-1] if lines else out.returncode}")
    return out.stdout.strip()


def fetch_head(repo: Path, remote: str, number: int) -> str:
    """Fetch PR ``number``'s head; return its commit."""
    ref = f"refs/agentbridge/pr/{number}"
    _git(repo, "fetch", "--no-tags", "--force", remote, f"+refs/pull/{number}/head:{ref}")
    return _git(repo, "rev-parse", f"{ref}^{{commit}}")


def merge_base(repo: Path, remote: str, base: str, head: str) -> str:
    """Where the PR branched from ``base`` (empty when that cannot be told)."""
    try:
        _git(repo, "fetch", "--no-tags", remote, f"+refs/heads/{base}:refs/agentbridge/base/{base}")
        return _git(repo, "merge-base", f"refs/agentbridge/base/{base}", head)
    except GitError:
        return ""


def has_commit(repo: Path, sha: str) -> bool:
    try:
        _git(repo, "cat-file", "-e", f"{sha}^{{commit}}")
    except GitError:
        return False
    return True


def add_worktree(repo: Path, path: Path, commit: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        remove_worktree(repo, path)
    _git(repo, "worktree", "add", "--detach", "--force", str(path), commit)


def remove_worktree(repo: Path, path: Path) -> None:
    """Remove the worktree and git's record of it; a folder already gone is fine."""
    try:
        _git(repo, "worktree", "remove", "--force", "--force", str(path))
    except GitError:
        shutil.rmtree(path, ignore_errors=True)
    with contextlib.suppress(GitError):
        _git(repo, "worktree", "prune")
