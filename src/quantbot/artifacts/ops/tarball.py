"""Writing a month folder into a tar.gz and proving the copy: the byte-level half of archive.

Each file's sha256 is computed while it is packed (one pass over the source) and compared
with the tarball read back, so a bad copy is caught before anything is deleted.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from typing import IO

from quantbot.errors import ArchiveError

CHUNK = 1 << 20  # bytes per read
TAR_BLOCK = 512  # bytes; tar pads every member to whole blocks


def sha256_of(stream: IO[bytes]) -> str:
    digest = hashlib.sha256()
    while chunk := stream.read(CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


class HashingReader:
    """Feeds a file to tarfile while hashing what it reads (one pass over the source)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self.digest = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self._stream.read(n)
        self.digest.update(data)
        return data


def walk_files(month_dir: str) -> tuple[list[str], list[str], int]:
    """Folders and regular files below ``month_dir`` (relative, sorted) and an upper bound
    on their tar size in bytes; links and special files are refused."""
    dirs, files, size = [], [], 0
    for dirpath, dirnames, filenames in os.walk(month_dir):
        dirnames.sort()
        for name in dirnames + sorted(filenames):
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, month_dir)
            if os.path.islink(path):
                raise ArchiveError(f"{path} is a symbolic link; run folders hold regular files only")
            if name in dirnames:
                dirs.append(rel)
            elif os.path.isfile(path):
                files.append(rel)
                size += -(-os.path.getsize(path) // TAR_BLOCK) * TAR_BLOCK
            else:
                raise ArchiveError(f"{path} is not a regular file")
            size += 3 * TAR_BLOCK  # header, and a PAX header for long names
    return dirs, files, size


def pack(month_dir: str, month: str, dirs: list[str], files: list[str], path: str) -> dict[str, str]:
    """Write the tarball to ``path`` (fsynced); returns {member name: sha256}."""
    hashes: dict[str, str] = {}
    with open(path, "xb") as sink:
        with tarfile.open(fileobj=sink, mode="w:gz", compresslevel=6,
                          format=tarfile.PAX_FORMAT) as tar:
            tar.add(month_dir, arcname=month, recursive=False)
            for rel in dirs:
                tar.add(os.path.join(month_dir, rel), arcname=f"{month}/{rel}", recursive=False)
            for rel in files:
                src_path = os.path.join(month_dir, rel)
                name = f"{month}/{rel.replace(os.sep, '/')}"
                info = tar.gettarinfo(src_path, arcname=name)
                with open(src_path, "rb") as src:
                    reader = HashingReader(src)
                    tar.addfile(info, reader)  # type: ignore[arg-type]
                hashes[name] = reader.digest.hexdigest()
        sink.flush()
        os.fsync(sink.fileno())
    return hashes


def verify_archive(path: str, expected: dict[str, str]) -> None:
    """Read the archive back: every file present, byte-identical (sha256) to its source."""
    seen: dict[str, str] = {}
    try:
        with tarfile.open(path, mode="r:*") as tar:
            for member in tar:
                if member.isfile():
                    stream = tar.extractfile(member)
                    assert stream is not None
                    seen[member.name] = sha256_of(stream)
    except (tarfile.TarError, OSError, EOFError) as err:
        raise ArchiveError(f"{path}: archive unreadable after writing ({err}); nothing deleted") from None
    if seen != expected:
        diff = sorted(set(seen) ^ set(expected)) or sorted(k for k in seen if seen[k] != expected[k])
        raise ArchiveError(f"{path}: archive does not match the source ({diff[0]}); nothing deleted")
