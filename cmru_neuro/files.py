"""Files a run writes: atomic writes, and a run's own folder.

``atomic_write(path, write)``: ``write(temporary)`` then ``os.replace``: a run killed at any
moment leaves the previous file intact. :class:`RunFolder`: a folder is one run's, checked
before any work, refused when it already holds a run (unless asked to overwrite or resume),
locked (``filelock``) while the run writes, so two runs never mix their files.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Optional, Union

from filelock import FileLock, Timeout

PathLike = Union[str, os.PathLike]
#: Files whose presence means a folder already holds a run.
RUN_FILES = ("model.safetensors", "metrics.json", "trainer.pt")
LOCK_NAME = ".run.lock"


def atomic_write(path: PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(temporary)`` on a temporary file beside ``path``, flush it to disk, then
    rename it to ``path``. The temporary file is removed if ``write`` fails."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(temporary)
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()
    return path


class RunFolder:
    """Context manager making ``path`` this run's folder (``with RunFolder(path): ...``).

    On entry: creates it, checks it is a writable folder, refuses one that holds a run
    (``RUN_FILES``) unless ``overwrite`` or ``resume`` (``resume`` needs one), and takes its
    lock; a second run on the same folder fails at once. The lock is released on exit.
    """

    def __init__(self, path: PathLike, *, overwrite: bool = False, resume: bool = False):
        self.path = Path(path)
        self.overwrite, self.resume = bool(overwrite), bool(resume)
        self._lock: Optional[FileLock] = None

    def holds_a_run(self) -> bool:
        return any((self.path / name).exists() for name in RUN_FILES)

    def __enter__(self) -> "RunFolder":
        if self.path.exists() and not self.path.is_dir():
            raise FileExistsError(f"out_dir: {self.path} is a file, expected a folder for the run")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise PermissionError(f"out_dir: cannot create {self.path} ({error.strerror})") from None
        if not os.access(self.path, os.W_OK | os.X_OK):
            raise PermissionError(f"out_dir: {self.path} is not writable")
        self._lock = FileLock(str(self.path / LOCK_NAME))
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            raise FileExistsError(f"out_dir: {self.path} is being written by another run right now; "
                                  f"choose another folder") from None
        if self.resume and not self.holds_a_run():
            self.__exit__()
            raise FileNotFoundError(f"resume: {self.path} holds no run to continue")
        if self.holds_a_run() and not (self.overwrite or self.resume):
            self.__exit__()
            raise FileExistsError(f"out_dir: {self.path} already holds a run; pass --overwrite to replace it, "
                                  f"--resume to continue it, or choose another folder")
        return self

    def __exit__(self, *_) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None


__all__ = ["RUN_FILES", "RunFolder", "atomic_write"]
