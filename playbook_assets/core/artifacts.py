"""The artifact store: step and output results as Parquet files, each with its sha256, byte
size and row count (the Dagster adapter's I/O manager stores through it).

Layout under ``artifacts.directory``::

    data/<playbook>/<asset>/[<partition>/]<dagster run id>.parquet   results (immutable)
    <run_id>.json                                                    run reports
    <run_id>.manifest.json                                           what a run produced
    <run_id>.playbook.yaml                                           the playbook as it ran

Files are written to a temporary name and renamed into place, so a reader never finds a
partial file, and an existing file is never overwritten. A file that cannot be written (disk
full, a file where a folder should be) raises ``ArtifactWriteError`` naming it. A stored
result is read only after its bytes match the sha256 its materialization recorded
(``read_verified_table``): a changed or replaced file is refused, not used.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from playbook_assets.core.errors import ArtifactChecksumError, ArtifactWriteError, TerminalStepError

PATH_METADATA_KEY = "artifact_path"
SHA256_METADATA_KEY = "artifact_sha256"
BYTES_METADATA_KEY = "artifact_bytes"
PARQUET_COMPRESSION = "zstd"
_HASH_CHUNK = 1 << 20
_UNSAFE_PATH_CHARACTERS = re.compile(r"[^A-Za-z0-9._=-]")


@dataclass(frozen=True)
class EncodedTable:
    """A result table with its Parquet encoding, made once by the step that produced it.

    The step needs the content hash for the asset's data version; the I/O manager writes
    the same bytes, so the table is encoded only once.
    """

    table: pa.Table
    # The Parquet file's bytes, in the pieces the writer produced them in.
    parquet: tuple[bytes, ...]
    sha256: str
    # Where these bytes are stored already: a data output links its step's file.
    stored_at: list[Path] = field(default_factory=list)

    @property
    def size(self) -> int:
        """Size of the Parquet encoding in bytes."""
        return sum(len(piece) for piece in self.parquet)


class _HashingSink(io.RawIOBase):
    """Keeps what the Parquet writer writes, piece by piece, and hashes it on the way.

    Writing into ``pa.BufferOutputStream`` grows one buffer by copying it, then the whole
    buffer is hashed again: 5.3 s for a 10M-row result where this takes 4.8 s (hash included)
    and pyarrow's own write to a file 4.7 s (bench/artifacts.py).
    """

    def __init__(self) -> None:
        super().__init__()
        self.pieces: list[bytes] = []
        self.digest = hashlib.sha256()

    def writable(self) -> bool:  # how pyarrow tells a writable file from a path
        return True

    def write(self, data: Any) -> int:
        piece = bytes(data)  # the writer may reuse its buffer
        self.pieces.append(piece)
        self.digest.update(piece)
        return len(piece)


def encode_table(table: pa.Table) -> EncodedTable:
    """Encode a table as zstd Parquet in memory and hash the bytes."""
    sink = _HashingSink()
    pq.write_table(table, sink, compression=PARQUET_COMPRESSION)
    return EncodedTable(table=table, parquet=tuple(sink.pieces), sha256=sink.digest.hexdigest())


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _temporary_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def write_error(path: Path, error: OSError, action: str = "write") -> ArtifactWriteError:
    """What could not be written, where, why, and what to do about it."""
    where = Path(error.filename) if error.filename else path
    hints = {
        errno.ENOSPC: f"free space on the disk that holds {where.parent}",
        errno.EDQUOT: f"free space (the disk quota is used up) for {where.parent}",
        errno.EEXIST: "a file stands where a folder should be: check artifacts.directory",
        errno.ENOTDIR: "a file stands where a folder should be: check artifacts.directory",
        errno.EACCES: f"make {where.parent} writable, or set artifacts.directory elsewhere",
        errno.EROFS: "the disk is read-only: set artifacts.directory elsewhere",
    }
    return ArtifactWriteError(
        f"cannot {action} {where}: {error.strerror or error}", hint=hints.get(error.errno or 0)
    )


def ensure_folder(folder: Path) -> None:
    """Create ``folder`` (and its parents) if missing; ``ArtifactWriteError`` if it cannot be."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise write_error(folder, e, "create the folder") from e


def atomic_write_bytes(
    path: Path, data: bytes | pa.Buffer | tuple[bytes, ...], *, overwrite: bool = True
) -> None:
    """Write a file so that readers see either nothing or the whole file.

    With ``overwrite=False`` an existing file is left alone; writing different bytes to an
    existing path is an error (artifacts are immutable). A failed write leaves nothing
    behind and raises ``ArtifactWriteError``.
    """
    ensure_folder(path.parent)
    temporary = _temporary_name(path)
    try:
        with temporary.open("wb") as handle:
            if isinstance(data, tuple):
                handle.writelines(data)
            else:
                handle.write(memoryview(data))
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(temporary, path)
            return
        _link_new(temporary, path)
    except OSError as e:
        raise write_error(path, e) from e
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()


def _link_new(source: Path, path: Path) -> None:
    """Give ``source``'s file the name ``path`` too, never replacing a file: an existing
    ``path`` must already hold the same bytes (artifacts are immutable)."""
    try:
        os.link(source, path)
    except FileExistsError:
        if file_sha256(path) != file_sha256(source):
            raise TerminalStepError(
                f"artifact {path} already exists with different content",
                hint="artifacts are immutable; this points at two runs sharing a run id",
            ) from None


def link_artifact(stored: Path, path: Path) -> None:
    """Store the same bytes under a second name: a hard link, else a copy."""
    ensure_folder(path.parent)
    try:
        _link_new(stored, path)
    except OSError:  # another file system, or links not supported
        atomic_write_bytes(path, stored.read_bytes(), overwrite=False)


def partition_path_segment(partition_key: str) -> str:
    """A partition key as one safe path segment (multi-dimensional keys keep their parts)."""
    return _UNSAFE_PATH_CHARACTERS.sub("_", partition_key) or "_"


@dataclass(frozen=True)
class PartitionedResult:
    """The results of a run over a range of partitions, one per partition, each stored on its
    own (the op records each partition's metadata: its path, sha256 and rows)."""

    parts: dict[str, EncodedTable | pa.Table]


def artifact_file(
    base_dir: str | Path, asset_path: Sequence[str], run_id: str, partition: str | None
) -> Path:
    """Where a run's result of an asset (its key's path: playbook and step or output, and a
    partition) is stored."""
    folder = Path(base_dir, "data", *asset_path)
    if partition is not None:
        folder = folder / partition_path_segment(partition)
    return folder / f"{run_id}.parquet"


def store_encoded(encoded: EncodedTable, path: Path) -> None:
    """Store an encoded result at ``path`` (a link to the same bytes stored earlier in the
    run, when there are some: a data output is its step's table)."""
    if path in encoded.stored_at and path.exists():
        return  # stored there already (the op stores results before Dagster sees them)
    stored = next((earlier for earlier in encoded.stored_at if earlier.exists()), None)
    if stored is not None:
        link_artifact(stored, path)
    else:
        atomic_write_bytes(path, encoded.parquet, overwrite=False)
    encoded.stored_at.append(path)


def read_verified_table(path: Path, expected_sha256: str | None, what: str) -> pa.Table:
    """The table stored at ``path``, once its bytes match ``expected_sha256``.

    The bytes are read once, then hashed and decoded from memory, so the file cannot change
    between the check and the read.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError as e:
        raise TerminalStepError(
            f"the stored result of {what} is missing: {path}",
            hint="materialize it again; `playbook artifacts verify --all` lists missing files",
        ) from e
    except OSError as e:
        raise TerminalStepError(
            f"cannot read the stored result of {what} ({path}): {e.strerror or e}"
        ) from e
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected_sha256:
        recorded = (
            f"the sha256 recorded when it was materialized ({expected_sha256})"
            if expected_sha256
            else "a recorded sha256 (its materialization has none)"
        )
        raise ArtifactChecksumError(
            f"the stored result of {what} ({path}) does not match {recorded}: the file was "
            f"changed or replaced (its sha256 is {actual}) and is not used",
            hint="materialize it again; `playbook artifacts verify --all` lists changed files",
        )
    return pq.read_table(pa.BufferReader(data))
