"""Processes of a run, on this host: is one alive, is it what we think it is, and children that die
with their parent. Linux-first (``/proc``, ``prctl``); elsewhere the checks degrade to "alive"."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux): a worker must not
    outlive a run that was killed. Used as a process pool's initializer, with the parent's pid:
    a parent killed while the worker was still starting is noticed here and the worker exits."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except OSError:
            pass
    if os.getppid() != parent:
        os._exit(1)


def alive(pid: int) -> bool:
    """Whether a process with this pid exists here (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    status = Path(f"/proc/{pid}/status")
    if status.exists():
        try:
            return "\nState:\tZ" not in status.read_text()
        except OSError:
            return False
    return True


def command_line(pid: int) -> str:
    """The process's command line, or "" when it cannot be read."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def kill_if(pid: int, looks_like: str) -> bool:
    """SIGKILL ``pid`` if it is alive and its command line contains ``looks_like`` (a pid may have
    been reused by an unrelated process since it was recorded). True when killed."""
    if not alive(pid) or looks_like not in command_line(pid):
        return False
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    return True
