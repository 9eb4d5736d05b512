"""Files a run writes: atomic writes, and a run's own folder.

``atomic_write(path, write)``: ``write(temporary)`` then ``os.replace``: a run killed at any
moment leaves the previous file intact. :class:`RunFolder`: a folder is one run's, checked
before any work, refused when it already holds a run (unless asked to overwrite or resume),
locked (``filelock``) while the run writes, so two runs never mix their files.
:func:`claim_folders`: the folders of several runs (seeds, cells) checked together, every
one before any run starts, then locked. :func:`new_run_folder`: a new folder of a name no
other run has, created exclusively (race-safe between processes).

On ``overwrite`` a run removes the files the previous run wrote in its folder
(:meth:`RunFolder.clear`: ``RUN_OUTPUTS`` and their left-over temporaries) just before it
starts training, so nothing of the previous run (an old ``best.safetensors``, old curves)
is mistaken for the new one's; any other file in the folder is left alone.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence, Union

from filelock import FileLock, Timeout

PathLike = Union[str, os.PathLike]
#: Files whose presence means a folder already holds a run.
RUN_FILES = ("model.safetensors", "metrics.json", "trainer.pt")
#: Every file a training run writes in its folder (removed on ``overwrite``).
RUN_OUTPUTS = ("model.safetensors", "best.safetensors", "trainer.pt", "metrics.json", "curves.png")
LOCK_NAME = ".run.lock"
#: Folders this process holds the lock of: (real path, thread) -> depth.
_HELD: dict[tuple[str, int], int] = {}


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
    (any of ``marks``, default ``RUN_FILES``) unless ``overwrite`` or ``resume``
    (``resume`` needs one), and takes its lock; a second run on the same folder fails at
    once. The lock is released on exit. Entering a folder this thread already holds (its
    runs were claimed together by :func:`claim_folders`) checks and locks nothing again.
    ``outputs``: the files a run writes there, which :meth:`clear` removes.
    """

    def __init__(self, path: PathLike, *, overwrite: bool = False, resume: bool = False,
                 marks: Sequence[str] = RUN_FILES, outputs: Sequence[str] = RUN_OUTPUTS,
                 what: str = "a run"):
        self.path = Path(path)
        self.overwrite, self.resume = bool(overwrite), bool(resume)
        self.marks, self.outputs, self.what = tuple(marks), tuple(outputs), what
        self._lock: Optional[FileLock] = None
        self._nested = False
        self.created = False

    @property
    def key(self) -> tuple[str, int]:
        return os.path.realpath(self.path), threading.get_ident()

    def holds_a_run(self) -> bool:
        return any((self.path / name).exists() for name in self.marks)

    def check_path(self) -> None:
        """Create the folder if needed; refuse a file or a folder that is not writable."""
        if self.path.exists() and not self.path.is_dir():
            raise FileExistsError(f"out_dir: {self.path} is a file, expected a folder for the run")
        if not self.path.exists():
            try:
                self.path.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise PermissionError(f"out_dir: cannot create {self.path} ({error.strerror})") from None
            self.created = True
        if not os.access(self.path, os.W_OK | os.X_OK):
            raise PermissionError(f"out_dir: {self.path} is not writable")

    def check_contents(self) -> None:
        """Refuse a folder holding a run (unless overwrite or resume) or, to resume, none."""
        if self.resume and not self.holds_a_run():
            raise FileNotFoundError(f"resume: {self.path} holds no run to continue")
        if self.holds_a_run() and not (self.overwrite or self.resume):
            raise FileExistsError(f"out_dir: {self.path} already holds {self.what}; pass --overwrite to replace it"
                                  + (", --resume to continue it" if self.marks == RUN_FILES else "")
                                  + ", or choose another folder")

    def check(self) -> None:
        """Every check of :meth:`__enter__` but the lock (a folder held here passes)."""
        if self.key in _HELD:
            return
        self.check_path()
        self.check_contents()

    def clear(self) -> list[Path]:
        """Remove what a previous run wrote here (``outputs`` and their temporaries);
        returns the files removed. Other files stay."""
        removed = []
        for name in self.outputs:
            for path in [self.path / name, *self.path.glob(f".{name}.*.tmp")]:
                if path.is_file() or path.is_symlink():
                    path.unlink()
                    removed.append(path)
        return removed

    def __enter__(self) -> "RunFolder":
        if self.key in _HELD:
            _HELD[self.key] += 1
            self._nested = True
            return self
        self.check_path()
        self._lock = FileLock(str(self.path / LOCK_NAME))
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            self._lock = None
            raise FileExistsError(f"out_dir: {self.path} is being written by another run right now; "
                                  f"choose another folder") from None
        try:
            self.check_contents()
        except Exception:
            self._release()
            raise
        _HELD[self.key] = 1
        return self

    def __exit__(self, *_) -> None:
        if self._nested:
            _HELD[self.key] -= 1
            self._nested = False
            return
        _HELD.pop(self.key, None)
        self._release()

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None


@contextlib.contextmanager
def claim_folders(folders: Sequence[RunFolder], *, checked: Sequence[RunFolder] = ()) -> Iterator[list[RunFolder]]:
    """Check every folder (``folders``, and ``checked``: other processes' share of a job,
    checked but not locked here) before any is locked or any run starts, then lock
    ``folders`` until the block ends. Two runs naming one folder are refused. Folders
    created by a check that fails are removed again (while empty)."""
    everyone = [*folders, *checked]
    seen: dict[str, Path] = {}
    for folder in everyone:
        real = os.path.realpath(folder.path)
        if real in seen:
            raise ValueError(f"out_dir: {folder.path} is named by two runs; expected a folder per run")
        seen[real] = folder.path
    try:
        for folder in everyone:
            folder.check()
    except Exception:
        for folder in everyone:
            if folder.created:
                with contextlib.suppress(OSError):
                    folder.path.rmdir()
        raise
    with contextlib.ExitStack() as stack:
        for folder in folders:
            stack.enter_context(folder)
        yield list(folders)


def new_run_folder(root: PathLike, stem: str) -> Path:
    """Create and return ``root/stem``, or ``root/stem-2``, ``-3``... when taken: created
    exclusively (``os.mkdir``), so two processes never get the same folder."""
    root = Path(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise PermissionError(f"out_dir: cannot create {root} ({error.strerror})") from None
    for index in range(1, 10_000):
        path = root / (stem if index == 1 else f"{stem}-{index}")
        try:
            os.mkdir(path)
        except FileExistsError:
            continue
        except OSError as error:
            raise PermissionError(f"out_dir: cannot create {path} ({error.strerror})") from None
        return path
    raise FileExistsError(f"out_dir: {root / stem} and 9 998 numbered variants are taken; pass --out DIR")


__all__ = ["RUN_FILES", "RUN_OUTPUTS", "RunFolder", "atomic_write", "claim_folders", "new_run_folder"]
