"""A real S3-protocol server on loopback (moto's standalone server), one per test session.

The server runs as its own process; tests and the CLI subprocesses they start reach it
through the standard AWS variables, exactly as a user's machine would.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

MOTO = str(Path(sys.executable).parent / "moto_server")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen([MOTO, "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("moto_server did not start") from None
            time.sleep(0.1)
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                           "AWS_REGION", "AWS_ENDPOINT_URL")}
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                      AWS_REGION="us-east-1", AWS_ENDPOINT_URL=endpoint)
    try:
        yield endpoint
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def s3_base(s3_endpoint: str) -> str:
    """A fresh bucket per test, as an s3:// base dir."""
    import boto3

    bucket = f"qb-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=bucket)
    return f"s3://{bucket}/team/runs"


class MotoServer:
    """A moto server of one test's own (pausing it disturbs no other test), logging every
    request line to ``log``: SIGSTOP/SIGCONT pause it for real (the kernel still accepts
    connections and buffers requests, as for a stalled store)."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.port = _free_port()
        self._log = log.open("w")
        self.proc = subprocess.Popen([MOTO, "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=self._log, stderr=self._log)
        self.endpoint = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.proc.kill()
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.1)

    def bucket(self) -> str:
        import boto3

        name = f"qb-{uuid.uuid4().hex[:12]}"
        boto3.client("s3", endpoint_url=self.endpoint).create_bucket(Bucket=name)
        return name

    def pause(self) -> None:
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)

    def requests(self) -> list[str]:
        """The request lines the server has logged (``PUT /bucket/key?query``)."""
        self._log.flush()
        return re.findall(r'"([A-Z]+ \S+) HTTP/1\.1"', self.log.read_text(errors="replace"))

    def stop(self) -> None:
        self.resume()
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self._log.close()


@pytest.fixture
def moto_server(tmp_path: Path, s3_endpoint: str) -> Iterator[MotoServer]:
    """A private moto server (credentials and region from the session fixture's env)."""
    server = MotoServer(tmp_path / "moto.log")
    try:
        yield server
    finally:
        server.stop()


class StallProxy:
    """A TCP proxy on loopback in front of a server that holds back, for ``hold_s`` seconds
    from the first match, every request whose bytes match ``pattern``; then forwards them.

    The server is real and untouched: to the client, the matching requests (one object's
    reads, or one key's PUT) simply go unanswered for a while, as with a slow store, and a
    held PUT still lands when it is finally forwarded (the dangerous case for a writer).
    """

    def __init__(self, upstream_port: int, pattern: bytes, hold_s: float) -> None:
        self.upstream_port = upstream_port
        self.pattern = re.compile(pattern)
        self.hold_s = hold_s
        self.until: float | None = None
        self.matched = 0
        self._lock = threading.Lock()
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.endpoint = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _hold(self, conn: socket.socket, data: bytes) -> bytes:
        """Keep reading the held request until the hold ends -> everything it sent.

        Reading on (rather than sleeping) keeps a request body that arrives in a later
        segment: a client that gives up may reset the connection, and Linux drops what was
        still unread, so a held PUT would otherwise never land."""
        with self._lock:
            self.matched += 1
            if self.until is None:
                self.until = time.monotonic() + self.hold_s
            until = self.until
        held = [data]
        with contextlib.suppress(OSError):
            while (left := until - time.monotonic()) > 0:
                conn.settimeout(left)
                try:
                    more = conn.recv(1 << 16)
                except TimeoutError:
                    break
                if not more:
                    break
                held.append(more)
        time.sleep(max(0.0, until - time.monotonic()))
        with contextlib.suppress(OSError):
            conn.settimeout(None)
        return b"".join(held)

    def _serve(self, conn: socket.socket) -> None:
        up = socket.create_connection(("127.0.0.1", self.upstream_port))
        threading.Thread(target=self._pump, args=(up, conn), daemon=True).start()
        try:
            while data := conn.recv(1 << 16):
                if self.pattern.search(data):
                    data = self._hold(conn, data)
                up.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                up.shutdown(socket.SHUT_WR)

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(1 << 16):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.close()

    def close(self) -> None:
        self._listener.close()


@pytest.fixture
def stall_proxy() -> Iterator[type[StallProxy]]:
    """``stall_proxy(upstream_port, pattern, hold_s)`` -> a StallProxy closed after the test."""
    made: list[StallProxy] = []

    def make(upstream_port: int, pattern: bytes, hold_s: float) -> StallProxy:
        made.append(StallProxy(upstream_port, pattern, hold_s))
        return made[-1]

    yield make  # type: ignore[misc]
    for proxy in made:
        proxy.close()


@pytest.fixture
def short_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shortest client timeouts and one SDK attempt: a stalled GET fails after 1 s, a
    stalled PUT after about 7 s (the SDK's floor, measured), instead of about 30 s."""
    monkeypatch.setenv("QUANTBOT_S3_ATTEMPTS", "1")
    monkeypatch.setenv("QUANTBOT_S3_CONNECT_TIMEOUT", "0.5")
    monkeypatch.setenv("QUANTBOT_S3_REQUEST_TIMEOUT", "1")
    monkeypatch.setenv("QUANTBOT_S3_WRITE_DEADLINE", "30")
