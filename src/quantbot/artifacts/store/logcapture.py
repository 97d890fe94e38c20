"""Tee a process's stdout/stderr file descriptors into log files.

Working at the fd level captures output of C extensions and child processes too, not only
``print``. A reader thread per stream copies the pipe to the log file and (optionally)
to the original descriptor, so the user still sees the output live.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager


def _pump(read_fd: int, log_path: str, echo_fd: int | None) -> None:
    with open(log_path, "ab", buffering=0) as log:
        while chunk := os.read(read_fd, 65536):
            log.write(chunk)
            if echo_fd is not None:
                os.write(echo_fd, chunk)
    os.close(read_fd)


@contextmanager
def _tee_fd(fd: int, log_path: str, echo: bool) -> Iterator[None]:
    saved = os.dup(fd)
    read_fd, write_fd = os.pipe()
    thread = threading.Thread(target=_pump, args=(read_fd, log_path, saved if echo else None),
                              daemon=True)
    thread.start()
    os.dup2(write_fd, fd)
    os.close(write_fd)
    try:
        yield
    finally:
        os.dup2(saved, fd)  # closes the pipe's last write end held by this process
        thread.join(timeout=5)
        os.close(saved)


@contextmanager
def capture_fds(stdout_path: str, stderr_path: str, echo: bool = True) -> Iterator[None]:
    """Within the block, fds 1 and 2 are teed into the two log files."""
    with ExitStack() as stack:
        for stream, fd, path in ((sys.stdout, 1, stdout_path), (sys.stderr, 2, stderr_path)):
            stream.flush()
            stack.enter_context(_tee_fd(fd, path, echo))
            stack.callback(stream.flush)
        yield
