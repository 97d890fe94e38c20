"""Run directories in object stores (S3 and compatibles, GCS, ...) through pyarrow.fs.

Kept apart from ``backends`` (the interface and local disk) because a store over the
network has a failure local disk has not: a request that goes unanswered, whose outcome is
unknown. Reads turn that into a StorageTimeoutError naming the key; writes resolve it by
reading the object back.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import pyarrow.fs as pafs

from quantbot.artifacts.schema.layout import SUCCESS_MARKER
from quantbot.artifacts.store.backends import AtomicSink, Storage, WrittenFile
from quantbot.errors import LimitExceededError, StorageError, StorageTimeoutError


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


_NOT_SENT = ("curlCode: 6,", "curlCode: 7,")  # host not resolved / no connection made


def _unanswered(err: OSError) -> bool:
    """A request that may have reached the store but got no answer (a timeout, a dropped
    connection; AWS SDK wording): its outcome is unknown. Not an answer such as 'access
    denied', nor a connection that was never made (``_unreachable``)."""
    text = str(err)
    return "NETWORK_CONNECTION" in text and not _unreachable(err)


def _unreachable(err: OSError) -> bool:
    """No connection could be made, so the request was never sent."""
    return any(code in str(err) for code in _NOT_SENT)


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

    def _network_error(self, what: str, path: str, err: OSError) -> StorageError | None:
        """The StorageError naming the key for a request that failed on the network, or None
        (the store answered: the OSError stands)."""
        if _unreachable(err):
            return StorageError(f"{self.uri(path)}: cannot reach the store while {what} "
                                f"({_first_line(err)})")
        if _unanswered(err):
            return StorageTimeoutError(f"{self.uri(path)}: no answer from the store while "
                                       f"{what} ({_first_line(err)})")
        return None

    def _info(self, path: str) -> pafs.FileInfo:
        try:
            return self.fs.get_file_info(path)
        except OSError as err:
            raise self._network_error("reading its metadata", path, err) or err from None

    def exists(self, path: str) -> bool:
        return self._info(path).type != pafs.FileType.NotFound

    def make_dirs(self, path: str, durable: bool = False) -> None:
        """Nothing to do: prefixes exist through the objects under them."""

    def create_dir_exclusive(self, path: str, durable: bool = False) -> None:
        # Not atomic on object stores; run ids are random UUIDs, so only a caller reusing
        # an id explicitly can race here, and the existence check catches the usual case.
        if self.exists(path):
            raise FileExistsError(path)

    def list_dir(self, path: str) -> list[str]:
        selector = pafs.FileSelector(path, allow_not_found=True, recursive=False)
        try:
            return [info.base_name for info in self.fs.get_file_info(selector)]
        except OSError as err:
            raise self._network_error("listing it", path, err) or err from None

    def read_bytes(self, path: str, max_bytes: int | None = None) -> bytes:
        try:
            with self.fs.open_input_file(path) as f:
                if max_bytes is not None and f.size() > max_bytes:
                    raise LimitExceededError(f"{path}: bytes {f.size()} > {max_bytes}")
                return f.read()
        except FileNotFoundError:
            raise
        except OSError as err:
            network = self._network_error("reading it", path, err)
            if network is not None:
                raise network from None
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
        for _ in self._retries():
            try:
                with self.fs.open_output_stream(path) as out:
                    out.write(data)
                return
            except OSError as err:
                if not _unanswered(err):  # answered, or never sent: the outcome is known
                    raise self._network_error("writing it", path, err) or err from None
                cause = _first_line(err)
            landed = self._landed(path, data, sha256)
            if landed:
                return
        state = ("the object is absent" if landed is False else
                 "its outcome is unknown: the store may still apply it")
        raise StorageTimeoutError(f"{self.uri(path)}: write not confirmed within "
                                  f"{self.options.write_deadline_s:g} s; {state} ({cause})")

    def read_own(self, path: str) -> bytes:
        """A read the writer's own protocol depends on (its run.json before an update):
        an unanswered GET is retried like a write, until ``write_deadline_s``, because
        giving up would fail a run the store is about to complete."""
        for _ in self._retries():
            try:
                return self.read_bytes(path)
            except StorageTimeoutError as err:
                unanswered = err
        raise unanswered

    def _retries(self) -> Iterator[None]:
        """One attempt at once, then one after each pause (0.2 s, doubling up to 5 s) while
        the next pause still ends within ``write_deadline_s``."""
        deadline = time.monotonic() + self.options.write_deadline_s
        pause = 0.2
        yield
        while time.monotonic() + pause <= deadline:
            time.sleep(pause)
            yield
            pause = min(pause * 2, 5.0)

    def open_atomic(self, path: str, durable: bool) -> ObjectSink:
        return ObjectSink(self, path)

    def sync_dir(self, path: str) -> None:
        """Object stores acknowledge a PUT only once it is durable."""

    def remove(self, path: str) -> None:
        self.fs.delete_file(path)

    def remove_tree(self, path: str) -> None:
        """The marker goes first, so a reader never sees a committed run lose files."""
        marker = self.join(path, SUCCESS_MARKER)
        if self.exists(marker):
            self.remove(marker)
        self.fs.delete_dir(path)

    def mtime(self, path: str) -> float | None:
        info = self._info(path)
        return info.mtime.timestamp() if info.mtime is not None else None


def endpoint_from_env() -> str | None:
    """The S3 endpoint the environment names (``QUANTBOT_S3_ENDPOINT``, then
    ``AWS_ENDPOINT_URL_S3``, then ``AWS_ENDPOINT_URL``), None for AWS itself."""
    return (os.environ.get("QUANTBOT_S3_ENDPOINT") or os.environ.get("AWS_ENDPOINT_URL_S3")
            or os.environ.get("AWS_ENDPOINT_URL") or None)


def s3_filesystem(endpoint_url: str | None, options: S3Options) -> pafs.FileSystem:
    """An S3 client with quantbot's timeouts. ``allow_delayed_open``: pyarrow then sends an
    object smaller than its 10 MiB part size as one PutObject at close instead of a
    multipart upload (3 requests), so small objects (run.json, _SUCCESS) are single PUTs."""
    endpoint = endpoint_url or endpoint_from_env()
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
