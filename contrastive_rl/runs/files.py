"""Files of a run: written so that a crash never leaves a half-written one, and removed.

The run directory (``rundir.py``) and the checkpoints (``checkpoint.py``) share these, and a
reader of metrics needs nothing heavier.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import tempfile

DATA_FILE = "checkpoint.msgpack"
META_FILE = "checkpoint.json"
TMP_SUFFIX = ".tmp"


def remove(path: str) -> None:
    """Remove the file or directory tree ``path``, if it is there (a link: the link only)."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


# -- atomic files ----------------------------------------------------------------------------


def _fsync_dir(directory: str) -> None:
    """Make a rename in ``directory`` durable (POSIX); a no-op where directories can't be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike[str], data: bytes | str) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a part.

    A temporary file ``.<name>.<random>.tmp`` in the same directory is written, flushed, fsynced
    and moved over ``path`` with ``os.replace``; it gets the mode a plain ``open`` would (0666
    less the umask). On any error the temporary file is removed and ``path`` is untouched.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if isinstance(data, str):
        data = data.encode("utf-8")
    fd, tmp = tempfile.mkstemp(
        prefix=f".{os.path.basename(path)}.", suffix=TMP_SUFFIX, dir=directory
    )
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; run files are the user's to share
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    _fsync_dir(directory)


def _umask() -> int:
    """The process's umask (read by setting it and setting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _remove_stray_temps(directory: str, name: str) -> None:
    for tmp in glob.glob(os.path.join(glob.escape(directory), f".{name}.*{TMP_SUFFIX}")):
        with contextlib.suppress(OSError):
            os.remove(tmp)


def checkpoint_path(directory: str | os.PathLike[str]) -> str:
    return os.path.join(os.fspath(directory), DATA_FILE)


def has_checkpoint(directory: str | os.PathLike[str]) -> bool:
    """Whether ``directory`` holds a checkpoint data file (not whether it is intact)."""
    return os.path.isfile(checkpoint_path(directory))
