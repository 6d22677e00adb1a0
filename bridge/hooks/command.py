"""The command line agents' hooks run to reach this runner (``agentbridge hook EVENT``)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path


def hook_command() -> str:
    """The absolute path of this runner's own executable, so agents' hooks reach this runner.

    Symlinks are not resolved: a virtualenv's ``python`` is a symlink to the base interpreter,
    which does not have this package.
    """
    exe = Path(sys.argv[0])
    if exe.name == "agentbridge" and exe.exists():
        return f"{shlex.quote(str(exe.absolute()))} hook"
    sibling = Path(sys.executable).absolute().parent / "agentbridge"
    if sibling.exists():
        return f"{shlex.quote(str(sibling))} hook"
    return f"{shlex.quote(str(Path(sys.executable).absolute()))} -m bridge hook"
