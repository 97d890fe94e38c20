"""The filesystem abstraction under run directories and the catalog scanner.

One interface, interchangeable backends (local disk now; object stores through the same
calls): callers never branch on the backend. Every write is atomic — a reader sees the
old content or the new, never a torn file under a final name:

* local disk: write to a hidden temporary name in the final folder, optionally fsync,
  then ``os.replace`` (atomic on POSIX);
* object stores: an object appears only once its upload completes (a single PUT below
  10 MiB, a multipart upload above); a write whose request timed out is read back and
  retried until its outcome is known (see ``ObjectStorage``).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import queue
import secrets
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.fs as pafs

from quantbot.errors import StorageError, StorageTimeoutError

TMP_PREFIX = ".tmp-"
_INLINE_HASH_BYTES = 1 << 20  # small files: a thread would cost more than it saves


@dataclass(frozen=True)
class WrittenFile:
    """What an atomic write put under its final name: size and content hash."""

    path: str
    bytes: int
    sha256: str


class AtomicSink(io.RawIOBase, ABC):
    """A writable binary sink whose content becomes visible only on ``commit()``.

    ``with sink:`` commits on a clean exit and discards on an exception.
    """

    result: WrittenFile | None = None

    def writable(self) -> bool:
        return True

    @abstractmethod
    def commit(self) -> WrittenFile: ...

    @abstractmethod
    def discard(self) -> None: ...

    def __enter__(self) -> AtomicSink:  # type: ignore[override]
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


class AtomicFile(AtomicSink):
    """A binary sink whose bytes appear under the final name only on ``commit()``.

    The sha256 is computed by a second thread while the producer (e.g. pyarrow's Parquet
    encoder, which releases the GIL) keeps writing, so hashing costs no wall time on a
    machine with two cores.
    """

    def __init__(self, final: str, durable: bool) -> None:
        super().__init__()
        self.final = final
        self.durable = durable
        head, name = os.path.split(final)
        self.tmp = os.path.join(head, f"{TMP_PREFIX}{secrets.token_hex(6)}-{name}")
        self._fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        self._hash = hashlib.sha256()
        self._size = 0
        self._pending = bytearray()
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._hasher: threading.Thread | None = None  # started once the file grows large

    def _hash_loop(self) -> None:
        while (chunk := self._queue.get()) is not None:
            self._hash.update(chunk)

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        # Copy: the producer may reuse its buffer once we return. Small writes (Parquet
        # page headers) are coalesced so that a small file costs one write syscall.
        self._pending += data
        n = len(data)
        self._size += n
        if len(self._pending) >= _INLINE_HASH_BYTES:
            self._flush_pending()
        return n

    def _flush_pending(self) -> None:
        if not self._pending:
            return
        chunk = bytes(self._pending)
        self._pending.clear()
        view = memoryview(chunk)
        while view:
            view = view[os.write(self._fd, view):]
        if self._hasher is None and self._size > _INLINE_HASH_BYTES:
            self._hasher = threading.Thread(target=self._hash_loop, daemon=True)
            self._hasher.start()
        if self._hasher is None:
            self._hash.update(chunk)
        else:
            self._queue.put(chunk)

    def tell(self) -> int:
        return self._size

    def _release(self) -> None:
        if self._fd >= 0:
            self._flush_pending()
            if self._hasher is not None:
                self._queue.put(None)
                self._hasher.join()
            os.close(self._fd)
            self._fd = -1

    def commit(self) -> WrittenFile:
        """fsync (when durable) and rename into place; returns size and sha256."""
        self._flush_pending()
        if self.durable:
            os.fsync(self._fd)
        self._release()
        os.replace(self.tmp, self.final)
        self.result = WrittenFile(self.final, self._size, self._hash.hexdigest())
        return self.result

    def discard(self) -> None:
        self._release()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.tmp)


class Storage(ABC):
    """Paths are plain strings; ``root`` is the folder (or bucket prefix) the storage serves."""

    root: str

    @abstractmethod
    def join(self, *parts: str) -> str: ...

    @abstractmethod
    def exists(self, path: str) -> bool: ...

    @abstractmethod
    def make_dirs(self, path: str) -> None: ...

    @abstractmethod
    def create_dir_exclusive(self, path: str) -> None:
        """Create a folder that must not exist yet (FileExistsError otherwise)."""

    @abstractmethod
    def list_dir(self, path: str) -> list[str]:
        """Names of the entries of a folder; [] when it does not exist."""

    @abstractmethod
    def read_bytes(self, path: str) -> bytes: ...

    @abstractmethod
    def open_atomic(self, path: str, durable: bool) -> AtomicSink:
        """A sink that becomes ``path`` on a clean exit of its ``with`` block, nothing otherwise."""

    def write_bytes(self, path: str, data: bytes, durable: bool) -> WrittenFile:
        """Atomically put ``data`` under ``path``."""
        with self.open_atomic(path, durable) as sink:
            sink.write(data)
        assert sink.result is not None
        return sink.result

    @abstractmethod
    def sync_dir(self, path: str) -> None:
        """Make a folder's entries (renames) durable."""

    @abstractmethod
    def remove(self, path: str) -> None: ...

    def local_path(self, path: str) -> str | None:
        """The path on local disk (for readers such as DuckDB), None where there is none."""
        return None

    def uri(self, path: str) -> str:
        """How a path is shown to people and stored in the catalog (re-openable)."""
        return path

    @abstractmethod
    def mtime(self, path: str) -> float | None:
        """Modification time (epoch seconds), None where the store has none (prefixes)."""


class LocalStorage(Storage):
    """Run directories on local (POSIX) disk."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = os.fspath(root)

    def join(self, *parts: str) -> str:
        return os.path.join(*[p for p in parts if p])

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def make_dirs(self, path: str) -> None:
        os.makedirs(path, exist_ok=True)

    def create_dir_exclusive(self, path: str) -> None:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.mkdir(path)

    def list_dir(self, path: str) -> list[str]:
        try:
            return os.listdir(path)
        except (FileNotFoundError, NotADirectoryError):
            return []

    def read_bytes(self, path: str) -> bytes:
        return Path(path).read_bytes()

    def open_atomic(self, path: str, durable: bool) -> AtomicFile:
        return AtomicFile(path, durable)

    def sync_dir(self, path: str) -> None:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def remove(self, path: str) -> None:
        os.unlink(path)

    def local_path(self, path: str) -> str | None:
        return os.path.abspath(path)

    def mtime(self, path: str) -> float | None:
        try:
            return os.stat(path).st_mtime
        except FileNotFoundError:
            return None


class ObjectSink(AtomicSink):
    """Collects a file's bytes (hashing as they come) and uploads them on commit.

    An object store makes an object visible only once its upload completes, so a reader
    never sees a partial object; a discarded sink uploads nothing.
    """

    def __init__(self, storage: ObjectStorage, path: str) -> None:
        super().__init__()
        self._storage = storage
        self.final = path
        self._buf = bytearray()
        self._hash = hashlib.sha256()

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self._buf += data
        self._hash.update(data)
        return len(data)

    def tell(self) -> int:
        return len(self._buf)

    def commit(self) -> WrittenFile:
        digest = self._hash.hexdigest()
        self._storage.put_checked(self.final, bytes(self._buf), digest)
        self.result = WrittenFile(self.final, len(self._buf), digest)
        self._buf = bytearray()
        return self.result

    def discard(self) -> None:
        self._buf = bytearray()


def _unanswered(err: OSError) -> bool:
    """A request the store did not answer: a timeout or a lost connection (AWS SDK wording),
    as opposed to an answer such as 'access denied'."""
    text = str(err)
    return "NETWORK_CONNECTION" in text or "curlCode" in text or "Timeout was reached" in text


def _first_line(err: BaseException) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


@dataclass(frozen=True)
class S3Options:
    """Client settings of an S3 store, from ``QUANTBOT_S3_*`` variables (seconds).

    ``connect_timeout_s`` / ``request_timeout_s``: how long one request may wait for a
    connection / for bytes to move (on Linux the AWS SDK aborts a request that moves less
    than 1 byte/s for that many *whole* seconds, so 0.5 would mean "never": at least 1).
    Measured against a stalled server: a GET fails after ``request_timeout_s``, a PUT after
    ``request_timeout_s`` + about 6 s, per attempt. ``attempts``: tries of each request by
    the SDK (with backoff) before pyarrow reports an error, so with the defaults a stalled
    PUT is reported after about 3 x 11 s.
    ``write_deadline_s``: how long a write whose request went unanswered is read back and
    retried before it is reported as failed.
    """

    connect_timeout_s: float = 3.0
    request_timeout_s: float = 5.0
    attempts: int = 3
    write_deadline_s: float = 120.0

    @classmethod
    def from_env(cls) -> S3Options:
        """Options from ``QUANTBOT_S3_CONNECT_TIMEOUT``, ``_REQUEST_TIMEOUT``, ``_ATTEMPTS``
        and ``_WRITE_DEADLINE``; unset ones keep their defaults."""
        values: dict[str, float] = {}
        for name, least in (("connect_timeout_s", 0.001), ("request_timeout_s", 1.0),
                            ("attempts", 1.0), ("write_deadline_s", 0.001)):
            var = "QUANTBOT_S3_" + name.removesuffix("_s").upper()
            text = os.environ.get(var)
            if text is None:
                continue
            try:
                values[name] = int(text) if name == "attempts" else float(text)
            except ValueError:
                raise StorageError(f"{var}={text!r}: expected a number") from None
            if values[name] < least:
                raise StorageError(f"{var}={text!r}: must be at least {least:g}")
        return cls(**values)  # type: ignore[arg-type]


class ObjectStorage(Storage):
    """Run directories in an object store (S3 and compatibles, GCS, ...) via pyarrow.fs.

    "Folders" are key prefixes: a run directory exists once any object is under it.
    A read the store does not answer in time is a StorageTimeoutError naming the key. A
    write whose request goes unanswered has an unknown outcome (the store may have applied
    it), so it is resolved by reading the object back (size, then sha256): there, it
    succeeded; absent, the same bytes are PUT again (idempotent), until the object is
    verified or ``write_deadline_s`` has passed (then StorageTimeoutError).
    """

    def __init__(self, fs: pafs.FileSystem, root: str, scheme: str,
                 options: S3Options | None = None) -> None:
        self.fs = fs
        self.root = root.rstrip("/")
        self.scheme = scheme
        self.options = options or S3Options()

    def join(self, *parts: str) -> str:
        return "/".join(p.strip("/") if i else p.rstrip("/") for i, p in enumerate(parts) if p)

    def uri(self, path: str) -> str:
        return f"{self.scheme}://{path}"

    def _timeout(self, what: str, path: str, err: OSError) -> StorageTimeoutError:
        return StorageTimeoutError(f"{self.uri(path)}: no answer from the store while {what} "
                                   f"({_first_line(err)})")

    def _info(self, path: str) -> pafs.FileInfo:
        try:
            return self.fs.get_file_info(path)
        except OSError as err:
            if _unanswered(err):
                raise self._timeout("reading its metadata", path, err) from None
            raise

    def exists(self, path: str) -> bool:
        return self._info(path).type != pafs.FileType.NotFound

    def make_dirs(self, path: str) -> None:
        """Nothing to do: prefixes exist through the objects under them."""

    def create_dir_exclusive(self, path: str) -> None:
        # Not atomic on object stores; run ids are random UUIDs, so only a caller reusing
        # an id explicitly can race here, and the existence check catches the usual case.
        if self.exists(path):
            raise FileExistsError(path)

    def list_dir(self, path: str) -> list[str]:
        selector = pafs.FileSelector(path, allow_not_found=True, recursive=False)
        try:
            return [info.base_name for info in self.fs.get_file_info(selector)]
        except OSError as err:
            if _unanswered(err):
                raise self._timeout("listing it", path, err) from None
            raise

    def read_bytes(self, path: str) -> bytes:
        try:
            with self.fs.open_input_file(path) as f:
                return f.read()
        except FileNotFoundError:
            raise
        except OSError as err:
            if _unanswered(err):
                raise self._timeout("reading it", path, err) from None
            if not self.exists(path):
                raise FileNotFoundError(path) from None
            raise

    def _landed(self, path: str, data: bytes, sha256: str) -> bool | None:
        """Whether ``path`` holds exactly ``data`` (None: the store did not answer)."""
        try:
            info = self.fs.get_file_info(path)
            if info.type == pafs.FileType.NotFound or info.size != len(data):
                return False
            with self.fs.open_input_file(path) as f:
                return hashlib.sha256(f.read()).hexdigest() == sha256
        except OSError as err:
            if _unanswered(err):
                return None
            raise

    def put_checked(self, path: str, data: bytes, sha256: str) -> None:
        """PUT ``data`` under ``path``; an unanswered request is resolved by reading back.

        Returns once the object is verified to hold ``data``; raises StorageTimeoutError
        when ``write_deadline_s`` passes first, saying whether the object is absent or its
        outcome unknown. Errors the store answers with (access denied, ...) pass through.
        """
        deadline = time.monotonic() + self.options.write_deadline_s
        pause = 0.2
        while True:
            try:
                with self.fs.open_output_stream(path) as out:
                    out.write(data)
                return
            except OSError as err:
                if not _unanswered(err):
                    raise
                cause = _first_line(err)
            landed = self._landed(path, data, sha256)
            if landed:
                return
            if time.monotonic() + pause > deadline:
                state = ("the object is absent" if landed is False else
                         "its outcome is unknown: the store may still apply it")
                raise StorageTimeoutError(
                    f"{self.uri(path)}: write not confirmed within "
                    f"{self.options.write_deadline_s:g} s; {state} ({cause})")
            time.sleep(pause)
            pause = min(pause * 2, 5.0)

    def open_atomic(self, path: str, durable: bool) -> ObjectSink:
        return ObjectSink(self, path)

    def sync_dir(self, path: str) -> None:
        """Object stores acknowledge a PUT only once it is durable."""

    def remove(self, path: str) -> None:
        self.fs.delete_file(path)

    def mtime(self, path: str) -> float | None:
        info = self._info(path)
        return info.mtime.timestamp() if info.mtime is not None else None


def _s3_filesystem(endpoint_url: str | None, options: S3Options) -> pafs.FileSystem:
    """An S3 client with quantbot's timeouts. ``allow_delayed_open``: pyarrow then sends an
    object smaller than its 10 MiB part size as one PutObject at close instead of a
    multipart upload (3 requests), so small objects (run.json, _SUCCESS) are single PUTs."""
    endpoint = endpoint_url or os.environ.get("QUANTBOT_S3_ENDPOINT") or os.environ.get(
        "AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    kwargs: dict[str, object] = {}
    if endpoint:
        parsed = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
        kwargs.update(endpoint_override=parsed.netloc + parsed.path.rstrip("/"),
                      scheme=parsed.scheme)
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        kwargs["region"] = region
    return pafs.S3FileSystem(  # credentials: the standard AWS env vars and files
        **kwargs, connect_timeout=options.connect_timeout_s,
        request_timeout=options.request_timeout_s, allow_delayed_open=True,
        retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=options.attempts))


def open_storage(base_dir: str | os.PathLike[str] | Storage, endpoint_url: str | None = None) -> Storage:
    """The storage backend for a base dir: a local path, or a URI such as ``s3://bucket/prefix``.

    S3-compatible stores take their endpoint from ``endpoint_url``, else the
    ``QUANTBOT_S3_ENDPOINT`` / ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` variables.
    """
    if isinstance(base_dir, Storage):
        return base_dir
    text = os.fspath(base_dir)
    scheme = urlsplit(text).scheme if "://" in text else ""
    if scheme in ("", "file"):
        return LocalStorage(text[len("file://"):] if scheme else text)
    options = S3Options.from_env()
    try:
        if scheme == "s3":
            fs: pafs.FileSystem = _s3_filesystem(endpoint_url, options)
            path = text[len("s3://"):]
        else:
            fs, path = pafs.FileSystem.from_uri(text)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as err:
        raise StorageError(f"cannot open storage {text}: {err}") from None
    return ObjectStorage(fs, path, scheme, options)
