"""The run lock: one process at a time writes a run directory (``.crl.lock``)."""

from __future__ import annotations

import fcntl
import os

from contrastive_rl.errors import RunDirError

LOCK_FILE = ".crl.lock"


class RunLock:
    """An exclusive ``flock`` on ``<path>/.crl.lock``, so that one process at a time writes a run.

    The file holds the PID of the holder, for the refusal message. The kernel drops the lock
    when the process ends, however it ends, so a killed run never leaves its directory locked.
    The file itself stays (removing it would let two processes lock two different files).
    """

    def __init__(self, path: str):
        self._fd: int | None = None
        file = os.path.join(path, LOCK_FILE)
        fd = os.open(file, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise RunDirError(
                f"{path} is in use by another run (process {holder}); wait for it to end, or "
                f"stop it (Ctrl-C, or kill {holder}: it saves a checkpoint) and then "
                f"`crl train --resume {path}`"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the lock
            self._fd = None

    def __del__(self) -> None:
        self.release()
