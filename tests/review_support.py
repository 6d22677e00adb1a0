"""Shared by the review tests: a local bare repository as the PR remote (with
``refs/pull/N/head``, as GitHub publishes it) and the stand-in ``gh`` in ``tests/fixtures_gh``.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

GH_DIR = Path(__file__).resolve().parent / "fixtures_gh"
SLUG = "acme/widgets"


def git(cwd: Path, *args: str) -> str:
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        "PATH": "/usr/bin:/bin",
        "HOME": str(cwd),
    }
    out = subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


class PrRemote:
    """``origin.git`` (bare) with ``main`` and PR heads, and ``repo``, a clone of it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.bare = root / "origin.git"
        self.author = root / "author"
        self.repo = root / "repo"
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(self.bare)], check=True)
        subprocess.run(["git", "init", "-q", "-b", "main", str(self.author)], check=True)
        (self.author / "README").write_text("widgets\n")
        git(self.author, "add", "README")
        git(self.author, "commit", "-qm", "first")
        git(self.author, "remote", "add", "origin", str(self.bare))
        git(self.author, "push", "-q", "origin", "main")
        subprocess.run(["git", "clone", "-q", str(self.bare), str(self.repo)], check=True)

    def push_head(self, number: int, text: str) -> str:
        """Commit ``text`` on the PR's branch and publish it as ``refs/pull/N/head``."""
        branch = f"feature-{number}"
        heads = git(self.author, "branch", "--list", branch)
        git(self.author, "checkout", "-q", *([branch] if heads else ["-b", branch, "main"]))
        (self.author / f"change-{number}.txt").write_text(text)
        git(self.author, "add", ".")
        git(self.author, "commit", "-qm", f"change {number}: {text}")
        git(self.author, "push", "-q", "--force", "origin", f"HEAD:refs/pull/{number}/head")
        return git(self.author, "rev-parse", "HEAD")


class GhStub:
    """The stand-in ``gh``'s state file and call log."""

    def __init__(self, root: Path) -> None:
        self.state_path = root / "gh-state.json"
        self.log_path = root / "gh-calls.jsonl"
        self.state: dict[str, Any] = {"prs": {}, "listed": [], "reviews": {}}
        self.save()

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import os

        monkeypatch.setenv("PATH", f"{GH_DIR}{os.pathsep}{os.environ.get('PATH', '')}")
        monkeypatch.setenv("GH_STUB_STATE", str(self.state_path))
        monkeypatch.setenv("GH_STUB_LOG", str(self.log_path))

    def save(self) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state))
        tmp.replace(self.state_path)

    def pr(self, number: int, sha: str, title: str = "Add widgets", listed: bool = False) -> None:
        self.state["prs"][str(number)] = {
            "number": number,
            "title": title,
            "url": f"https://github.com/{SLUG}/pull/{number}",
            "headRefOid": sha,
            "baseRefName": "main",
            "headRefName": f"feature-{number}",
        }
        if listed and number not in self.state["listed"]:
            self.state["listed"].append(number)
        self.save()

    def review(self, number: int, sha: str, submitted_at: str, link: str) -> None:
        self.state["reviews"].setdefault(str(number), []).append(
            {"commit_id": sha, "submitted_at": submitted_at, "html_url": link}
        )
        self.save()

    def calls(self, *prefix: str) -> int:
        if not self.log_path.exists():
            return 0
        lines = self.log_path.read_text().splitlines()
        return sum(json.loads(line)[: len(prefix)] == list(prefix) for line in lines)
