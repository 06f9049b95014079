"""Reading and writing the files keyguard owns: one reader that names the file in its error, one atomic writer.

Both the certificate tools and the credentials renderer write files that something else reads while they change
(the server's certificate watcher, a task's SDK), so every write goes to a temporary file in the same directory,
is flushed to the device and renamed over the target: a reader sees the old bytes or the new, never half. Imports
nothing heavy, so the renderer init container starts fast.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from webhook.errors import UsageError


def read_file(path: Path) -> bytes:
    """A file's bytes; an unreadable file is a UsageError naming the file and the reason."""
    try:
        return path.read_bytes()
    except OSError as error:
        raise UsageError(f"{path}: cannot read: {error.strerror or type(error).__name__}") from None


def write_atomic(path: Path, data: bytes, *, mode: int) -> None:
    """Write `data` to `path` with `mode`, atomically; on failure no temporary file is left behind."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
