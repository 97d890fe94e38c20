"""The filesystem abstraction under run directories and the catalog scanner.

One interface, interchangeable backends (local disk now; object stores through the same
calls): callers never branch on the backend. Every write is atomic — a reader sees the
old content or the new, never a torn file under a final name:

* local disk: write to a hidden temporary name in the final folder, optionally fsync,
  then ``os.replace`` (atomic on POSIX);
* object stores: an object appears only once its upload completes (a single PUT below
  10 MiB, a multipart upload above); a write whose request timed out is read back and
  retried until its outcome is known (``ObjectStorage`` in ``objects``).
"""

from __future__ import annotations

import contextlib
import copy
import errno
import hashlib
import io
import os
import queue
import secrets
import shutil
import stat
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.fs as pafs

from quantbot._lazy import lazy_exports
from quantbot.errors import LimitExceededError, StorageError, UnsafeFileError

TMP_PREFIX = ".tmp-"
_OBJECTS = "quantbot.artifacts.store.objects"
__getattr__ = lazy_exports(__name__, {"ObjectStorage": _OBJECTS, "ObjectSink": _OBJECTS,
                                      "S3Options": _OBJECTS})
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
        """Write what is pending, stop the hasher, close the descriptor (once)."""
        if self._fd < 0:
            return
        fd = self._fd
        try:
            self._flush_pending()
        finally:
            self._fd = -1
            if self._hasher is not None:
                self._queue.put(None)
                self._hasher.join()
                self._hasher = None
            os.close(fd)

    def commit(self) -> WrittenFile:
        """fsync (when durable) and rename into place; returns size and sha256.

        Any failure on the way (ENOSPC in the last write or in fsync, a failed rename)
        removes the temporary file before the error propagates.
        """
        try:
            self._flush_pending()
            if self.durable:
                os.fsync(self._fd)
            self._release()
            os.replace(self.tmp, self.final)
        except BaseException:
            self.discard()
            raise
        self.result = WrittenFile(self.final, self._size, self._hash.hexdigest())
        return self.result

    def discard(self) -> None:
        """Drop the content: no final name, no temporary file (also after a failed write)."""
        self._pending.clear()  # nothing more is written: a full disk must not block cleanup
        with contextlib.suppress(OSError):
            self._release()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.tmp)


class Storage(ABC):
    """Paths are plain strings; ``root`` is the folder (or bucket prefix) the storage serves."""

    root: str
    #: The S3 endpoint this storage was opened with: other URIs found through it (a run
    #: folder the catalog recorded) are opened with the same option.
    s3_endpoint: str | None = None

    @abstractmethod
    def join(self, *parts: str) -> str: ...

    @abstractmethod
    def exists(self, path: str) -> bool: ...

    @abstractmethod
    def make_dirs(self, path: str, durable: bool = False) -> None:
        """Create a folder and its missing parents; ``durable``: each new folder's entry is
        fsynced in its parent, so a power cut cannot make it (and what is in it) vanish."""

    @abstractmethod
    def create_dir_exclusive(self, path: str, durable: bool = False) -> None:
        """Create a folder that must not exist yet (FileExistsError otherwise), and its
        missing parents; ``durable`` as for ``make_dirs``."""

    @abstractmethod
    def list_dir(self, path: str) -> list[str]:
        """Names of the entries of a folder; [] when it does not exist."""

    @abstractmethod
    def read_bytes(self, path: str, max_bytes: int | None = None) -> bytes:
        """The file's bytes; LimitExceededError when it is larger than ``max_bytes``."""

    @abstractmethod
    def open_atomic(self, path: str, durable: bool) -> AtomicSink:
        """A sink that becomes ``path`` on a clean exit of its ``with`` block, nothing otherwise."""

    def read_own(self, path: str) -> bytes:
        """A read the writer's own protocol depends on; object stores retry it."""
        return self.read_bytes(path)

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

    @abstractmethod
    def remove_tree(self, path: str) -> None:
        """Delete a folder and everything in it (a run gc removes for good). Readers that
        list the parent stop seeing it as a run first: on local disk it is renamed to a
        hidden name before its files go."""

    def local_path(self, path: str) -> str | None:
        """The path on local disk (for readers such as DuckDB), None where there is none."""
        return None

    def uri(self, path: str) -> str:
        """How a path is shown to people and stored in the catalog (re-openable)."""
        return path

    def at(self, path: str) -> Storage:
        """The same backend and options rooted at ``path`` (e.g. one run's folder), so a
        configured store travels as one object instead of a URI re-opened later."""
        child = copy.copy(self)
        child.root = path
        return child

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

    def make_dirs(self, path: str, durable: bool = False) -> None:
        if not durable:
            os.makedirs(path, exist_ok=True)
            return
        missing = []
        head = os.path.abspath(path)
        while not os.path.isdir(head):
            missing.append(head)
            head = os.path.dirname(head)
        for folder in reversed(missing):
            with contextlib.suppress(FileExistsError):  # another writer made it meanwhile
                os.mkdir(folder)
            if not os.path.isdir(folder):
                raise FileExistsError(f"{folder} exists and is not a folder")
            self.sync_dir(os.path.dirname(folder))

    def create_dir_exclusive(self, path: str, durable: bool = False) -> None:
        self.make_dirs(os.path.dirname(path) or ".", durable)
        os.mkdir(path)
        if durable:
            self.sync_dir(os.path.dirname(path) or ".")

    def list_dir(self, path: str) -> list[str]:
        try:
            return os.listdir(path)
        except (FileNotFoundError, NotADirectoryError):
            return []

    def read_bytes(self, path: str, max_bytes: int | None = None) -> bytes:
        """Only a regular file is read: a symlink, FIFO, socket, device or folder is refused
        (UnsafeFileError) without blocking, and the size is checked before any byte is read."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as err:
            if err.errno in (errno.ELOOP, errno.ENXIO, errno.EOPNOTSUPP):  # link; socket
                kind = "a symbolic link" if os.path.islink(path) else "not a regular file"
                raise UnsafeFileError(f"{path}: {kind}") from None
            raise
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                kind = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file"
                raise UnsafeFileError(f"{path}: {kind}")
            if max_bytes is not None and st.st_size > max_bytes:
                raise LimitExceededError(f"{path}: bytes {st.st_size} > {max_bytes}")
        except BaseException:
            os.close(fd)
            raise
        with os.fdopen(fd, "rb", buffering=0) as f:
            data = f.readall()
        if max_bytes is not None and len(data) > max_bytes:  # grew since the fstat
            raise LimitExceededError(f"{path}: bytes {len(data)} > {max_bytes}")
        return data

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

    def remove_tree(self, path: str) -> None:
        """Refuses a symbolic link (UnsafeFileError): only a real folder is removed."""
        if os.path.islink(path) or not os.path.isdir(path):
            raise UnsafeFileError(f"{path}: not a real folder; nothing removed")
        head, name = os.path.split(path)
        doomed = os.path.join(head, f"{TMP_PREFIX}{secrets.token_hex(6)}-{name}")
        os.rename(path, doomed)
        shutil.rmtree(doomed)

    def local_path(self, path: str) -> str | None:
        return os.path.abspath(path)

    def mtime(self, path: str) -> float | None:
        try:
            return os.stat(path).st_mtime
        except FileNotFoundError:
            return None


def open_storage(base_dir: str | os.PathLike[str] | Storage, endpoint_url: str | None = None) -> Storage:
    """The storage backend for a base dir: a local path, or a URI such as ``s3://bucket/prefix``.

    S3-compatible stores take their endpoint from ``endpoint_url``, else the
    ``QUANTBOT_S3_ENDPOINT`` / ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` variables.
    """
    if isinstance(base_dir, Storage):
        return base_dir
    storage = _open(os.fspath(base_dir), endpoint_url)
    storage.s3_endpoint = endpoint_url
    return storage


def _open(text: str, endpoint_url: str | None) -> Storage:
    scheme = urlsplit(text).scheme if "://" in text else ""
    if scheme in ("", "file"):
        return LocalStorage(text[len("file://"):] if scheme else text)
    from quantbot.artifacts.store.objects import ObjectStorage, S3Options, s3_filesystem

    options = S3Options.from_env()
    try:
        if scheme == "s3":
            fs: pafs.FileSystem = s3_filesystem(endpoint_url, options)
            path = text[len("s3://"):]
        else:
            fs, path = pafs.FileSystem.from_uri(text)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as err:
        raise StorageError(f"cannot open storage {text}: {err}") from None
    return ObjectStorage(fs, path, scheme, options)
