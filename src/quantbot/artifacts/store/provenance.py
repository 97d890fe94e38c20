"""Provenance of a run: the git state of the code that ran, and the host.

One ``git status`` call gives commit, branch and dirtiness; it is cached for a couple of
seconds so that a loop writing many small runs does not pay a subprocess per run.
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from functools import lru_cache

from quantbot import __version__

_TTL_S = 2.0
_cache: dict[str, tuple[float, GitProvenance]] = {}


@dataclass(frozen=True)
class GitProvenance:
    """None in every field where git or a repository is unavailable."""

    commit: str | None = None
    branch: str | None = None
    dirty: bool | None = None


def _read_git(cwd: str) -> GitProvenance:
    try:
        out = subprocess.run(
            ["git", "status", "--porcelain=v2", "--branch", "--untracked-files=no"],
            cwd=cwd, capture_output=True, text=True, timeout=10, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return GitProvenance()
    if out.returncode != 0:
        return GitProvenance()
    commit = branch = None
    dirty = False
    for line in out.stdout.splitlines():
        if line.startswith("# branch.oid "):
            oid = line.split(" ", 2)[2]
            commit = None if oid == "(initial)" else oid
        elif line.startswith("# branch.head "):
            head = line.split(" ", 2)[2]
            branch = None if head == "(detached)" else head
        elif line and not line.startswith("#"):
            dirty = True
    return GitProvenance(commit, branch, dirty)


def get_git_provenance(path: str | os.PathLike[str] | None = None) -> GitProvenance:
    """commit, branch and dirty of the git work tree at ``path`` (default: the cwd)."""
    cwd = os.path.abspath(path or os.getcwd())
    now = time.monotonic()
    hit = _cache.get(cwd)
    if hit and now - hit[0] < _TTL_S:
        return hit[1]
    prov = _read_git(cwd)
    _cache[cwd] = (now, prov)
    return prov


@lru_cache(maxsize=1)
def host_info() -> dict[str, str]:
    return {
        "hostname": socket.gethostname(),
        "python": sys.version.split()[0],
        "quantbot": __version__,
        "platform": platform.platform(),
    }
