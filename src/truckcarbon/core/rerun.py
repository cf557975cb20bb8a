"""A run folder's lock, its crash-safe reruns and the recovery rule after a killed run.

The functions here work on the folder's physical path ``RUN`` (symlinks resolved);
:class:`~truckcarbon.core.runfolder.RunFolder` calls them with its layout.

**Lock** (:func:`hold_lock`): ``PARENT/.RUN.lock``, exclusive for a run, shared for a
command writing into the folder (analyze, forecast, report); it never waits (a lock
held by another process raises :class:`BusyError`).

**Reruns** (:func:`staged_rerun`). A run never writes into ``RUN/`` itself. Under the
exclusive lock it builds the new folder in ``PARENT/.RUN.staging-<token>``: first a
hard link (a copy where links fail) of every file of the old folder that the run
keeps (other months, analysis/, ...; not the database, the quarantine or
temporaries), then its own outputs. Those replace a link by a rename
(:func:`truckcarbon.core.files.atomic_path`), never write into it, so the old
folder's files keep their bytes: **files of a staging folder must be replaced, never
modified in place**. The work and spill folder is ``PARENT/.RUN.work-<token>``.
:meth:`Rerun.commit` then swaps the two folders in one step,
``renameat2(RENAME_EXCHANGE)`` (Linux, glibc >= 2.28), and removes the staging name,
which now holds the old run. Where the exchange is unavailable (another OS, a file
system that refuses it) it renames ``RUN`` to ``PARENT/.RUN.old-<token>`` and the
staging folder to ``RUN``. A fresh folder is one rename. Killed at any point, ``RUN``
is the old run byte for byte or the new one complete.

**Recovery rule** (:func:`recover`, applied by the next run under the lock, and by
readers through :meth:`RunFolder.open <truckcarbon.core.runfolder.RunFolder.open>`
when the lock is free): ``.RUN.staging-*`` and ``.RUN.work-*`` are always garbage
and removed; a ``.RUN.old-*`` beside an existing ``RUN`` is the previous run after a
completed swap and is removed; a ``.RUN.old-*`` without ``RUN`` is the old run of a
fallback swap killed between its two renames and is renamed back to ``RUN`` (the new
run is discarded). ``_work-*`` folders inside ``RUN`` (the work folders of older
versions) are removed too.

Fault points of a rerun (``TRUCKCARBON_FAULT``, :mod:`truckcarbon.core.faults`):
``staged``, ``before_swap``, ``between_renames`` (fallback swap only), ``after_swap``;
the pipeline adds ``reading``, ``month_written``, ``database``, ``quarantine``.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import re
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from truckcarbon.core.errors import BusyError
from truckcarbon.core.faults import fault_point

_TOKEN = re.compile(r"\d{8}T\d{6}-[0-9a-f]{8}")


def beside(real: Path, kind: str, token: str | None = None) -> Path:
    """``PARENT/.RUN.<kind>`` (``-<token>`` appended when given): the lock, staging, work and old names."""
    return real.parent / (f".{real.name}.{kind}" + (f"-{token}" if token else ""))


@contextmanager
def hold_lock(shown: Path, real: Path, exclusive: bool = True) -> Iterator[None]:
    """Hold ``PARENT/.RUN.lock`` of the folder ``real``; ``shown`` is the folder as messages name it.

    Never waits: a lock held by another process raises :class:`BusyError`. A shared
    lock that cannot be made (a read-only parent) is skipped. A killed holder's lock
    is released by the kernel. (No lock on Windows.)
    """
    if sys.platform == "win32" or (not exclusive and not shown.exists()):
        yield  # no lock on Windows; nothing to protect in a folder that does not exist
        return
    import fcntl

    path = beside(real, "lock")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        if exclusive:
            raise
        fd = -1
    if fd < 0:
        yield
        return
    try:
        try:
            fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BusyError(_busy(shown, path, fd, exclusive)) from None
        if exclusive:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)


def _busy(shown: Path, lock: Path, fd: int, exclusive: bool) -> str:
    if exclusive:
        return (
            f"{shown} is in use by another truckcarbon process (a run into it, or analyze, forecast or "
            f"report writing into it; lock {lock}); try again when it has finished"
        )
    pid = os.pread(fd, 32, 0).decode(errors="replace").strip()
    return (
        f"a run{f' (pid {pid})' if pid.isdigit() else ''} is writing {shown} (lock {lock}); "
        "try again when it has finished"
    )


def stale(real: Path, kind: str) -> list[Path]:
    """The ``.RUN.<kind>-<token>`` folders beside ``real`` (oldest first)."""
    prefix = f".{real.name}.{kind}-"
    if not real.parent.is_dir():
        return []
    return sorted(
        p for p in real.parent.iterdir() if p.name.startswith(prefix) and _TOKEN.fullmatch(p.name[len(prefix) :])
    )


def recover(real: Path) -> None:
    """Apply the recovery rule (see the module) to the folder ``real``; call with the exclusive lock held."""
    for kind in ("staging", "work"):
        for p in stale(real, kind):
            _remove(p)
    olds = stale(real, "old")
    if olds and not real.exists():
        os.rename(olds.pop(), real)  # a fallback swap killed between its renames: the old run back
    for p in olds:
        _remove(p)
    if real.is_dir():
        for p in real.glob("_work-*"):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)


@dataclass
class Rerun:
    """A run being written: the staging folder that becomes the run folder ``target``, and the work folder."""

    target: Path  # the run folder (physical path)
    path: Path
    work: Path
    token: str
    committed: bool = False

    def commit(self) -> None:
        """Swap the staging folder in (see the module's rerun and recovery rules)."""
        target = self.target
        fault_point("before_swap")
        if not target.exists():
            os.rename(self.path, target)
            self.committed = True
            fault_point("after_swap")
            return
        if _exchange(self.path, target):
            self.committed = True
            fault_point("after_swap")
            _remove(self.path)  # the previous run, now under the staging name
            return
        old = beside(target, "old", self.token)
        os.rename(target, old)
        fault_point("between_renames")
        try:
            os.rename(self.path, target)
        except BaseException:
            os.rename(old, target)
            raise
        self.committed = True
        fault_point("after_swap")
        _remove(old)


@contextmanager
def staged_rerun(real: Path, rewritten: Callable[[Path], bool]) -> Iterator[Rerun]:
    """A staging folder holding what a run keeps of ``real`` (all but what ``rewritten`` names), and a work folder.

    Call with the exclusive lock held and the folder recovered. The caller writes the new
    run into :attr:`Rerun.path` and calls :meth:`Rerun.commit`; leaving the block otherwise
    (an error) removes both folders and leaves ``real`` as it was.
    """
    token = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:8]
    stage = Rerun(real, beside(real, "staging", token), beside(real, "work", token), token)
    try:
        stage.work.mkdir()
        if real.is_dir():
            _link_tree(real, stage.path, rewritten)
        else:
            stage.path.mkdir()
        fault_point("staged")
        yield stage
    finally:
        _remove(stage.work)
        if not stage.committed:
            _remove(stage.path)


# ---------------------------------------------------------------------- helpers


def _link_tree(src: Path, dst: Path, skip: Callable[[Path], bool]) -> None:
    """``dst`` (new) with a hard link (else a copy) of every file under ``src`` that ``skip`` does not name."""
    dst.mkdir()
    shutil.copymode(src, dst)
    for root, dirs, files in os.walk(src):
        here = Path(root)
        rel = here.relative_to(src)
        walk = []
        for d in dirs:
            if skip(rel / d):
                continue
            if (here / d).is_symlink():
                _link_file(here / d, dst / rel / d)
                continue
            (dst / rel / d).mkdir()
            shutil.copymode(here / d, dst / rel / d)
            walk.append(d)
        dirs[:] = walk
        for f in files:
            if not skip(rel / f):
                _link_file(here / f, dst / rel / f)


def _link_file(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst, follow_symlinks=False)
    except OSError:
        shutil.copy2(src, dst, follow_symlinks=False)


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.exists():
        shutil.rmtree(path, ignore_errors=True)


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


@functools.cache
def _renameat2() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):  # glibc < 2.28, or another C library
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn  # type: ignore[no-any-return]


def _exchange(a: Path, b: Path) -> bool:
    """Swap the names ``a`` and ``b`` atomically (``renameat2(RENAME_EXCHANGE)``); False where unavailable."""
    fn = _renameat2()
    if fn is None:
        return False
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # the file system does not exchange
        return False
    raise OSError(err, os.strerror(err), str(a), None, str(b))


__all__ = ["Rerun", "beside", "hold_lock", "recover", "staged_rerun", "stale"]
