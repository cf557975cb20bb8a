"""The run folder: its layout, its lock, crash-safe reruns, and the one reader of its manifest.

Layout (``RUN/``, written by ``truckcarbon run`` and the commands that read it)::

    inventory/YYYY-MM.parquet   per month (kept across incremental runs; a run rewrites the months it computes)
    activity/YYYY-MM.parquet    per month (likewise)
    quarantine/                 replaced as a whole by every run
    truckcarbon.duckdb          rebuilt by every run
    manifest.json               rewritten by every run, last
    analysis/ forecast/ report/ written by ``analyze``, ``forecast``, ``report``; a run keeps them

An output subfolder is one line of :data:`OUTPUTS` (its name and whether it
holds one file per month, is replaced by each run, or is written by a later
command); :meth:`RunFolder.output` and :meth:`RunFolder.month_file` give its paths.

**Reruns** (:meth:`RunFolder.rerun`). A run never writes into ``RUN/`` itself. Under an
exclusive ``flock`` on ``PARENT/.RUN.lock`` (a second run into the same folder is
refused with :class:`BusyError`) it builds the new folder in
``PARENT/.RUN.staging-<token>``: first a hard link (a copy where links fail) of
every file of the old folder that the run keeps (other months, analysis/, ...;
not the database, the quarantine or temporaries), then its own outputs. Those
replace a link by a rename (:func:`truckcarbon.core.files.atomic_path`), never
write into it, so the old folder's files keep their bytes: **files of a staging
folder must be replaced, never modified in place**. The work and spill folder is
``PARENT/.RUN.work-<token>``. :meth:`Rerun.commit` then swaps the two folders in
one step, ``renameat2(RENAME_EXCHANGE)`` (Linux, glibc >= 2.28), and removes the
staging name, which now holds the old run. Where the exchange is unavailable
(another OS, a file system that refuses it) it renames ``RUN`` to
``PARENT/.RUN.old-<token>`` and the staging folder to ``RUN``. A fresh folder is
one rename. Killed at any point, ``RUN`` is the old run byte for byte or the new
one complete.

**Recovery rule** (applied by the next run under the lock, and by readers through
:meth:`RunFolder.open` when the lock is free): ``.RUN.staging-*`` and ``.RUN.work-*``
are always garbage and removed; a ``.RUN.old-*`` beside an existing ``RUN`` is the
previous run after a completed swap and is removed; a ``.RUN.old-*`` without
``RUN`` is the old run of a fallback swap killed between its two renames and is
renamed back to ``RUN`` (the new run is discarded). ``_work-*`` folders inside
``RUN`` (the work folders of older versions) are removed too.

Fault points of a rerun (``TRUCKCARBON_FAULT``, :mod:`truckcarbon.core.faults`):
``staged``, ``before_swap``, ``between_renames`` (fallback swap only), ``after_swap``;
the pipeline adds ``reading``, ``month_written``, ``database``, ``quarantine``.

**Reading** (:meth:`RunFolder.open`): typed accessors of the manifest
(:meth:`~RunFolder.months`, :meth:`~RunFolder.latest_run`, :meth:`~RunFolder.quality`,
:meth:`~RunFolder.inputs`, :meth:`~RunFolder.method_formula`) tolerate a missing
manifest, missing or older keys and wrong types: they return None or empty
values and record a :class:`Missing` notice (file, key path, why) in
:attr:`RunFolder.missing` (and in every :meth:`RunFolder.collect` block running),
so that each reader says what it lacked and renders the rest.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import json
import os
import re
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from truckcarbon.core.errors import BusyError, InputError
from truckcarbon.core.faults import fault_point
from truckcarbon.core.files import atomic_write_text

MANIFEST = "manifest.json"
DATABASE = "truckcarbon.duckdb"

OutputKind = Literal["monthly", "run", "derived"]


@dataclass(frozen=True)
class Output:
    """An output subfolder of a run folder.

    ``monthly``: one ``YYYY-MM.parquet`` per month, kept across runs (a run rewrites the months it computes);
    ``run``: replaced as a whole by every run; ``derived``: written by a later command, kept by runs.
    """

    name: str
    kind: OutputKind


OUTPUTS: tuple[Output, ...] = (
    Output("inventory", "monthly"),
    Output("activity", "monthly"),
    Output("unobserved", "monthly"),
    Output("quarantine", "run"),
    Output("analysis", "derived"),
    Output("forecast", "derived"),
    Output("report", "derived"),
)
_OUTPUTS = {o.name: o for o in OUTPUTS}
_MONTH_FILE = re.compile(r"\d{4}-\d{2}\.parquet")
_TOKEN = re.compile(r"\d{8}T\d{6}-[0-9a-f]{8}")


@dataclass(frozen=True)
class Missing:
    """Something a reader looked for in a run folder and did not find (or could not use)."""

    source: str  # a file of the run folder: "manifest.json", "inventory/2022-02.parquet"
    key: str  # the key path inside it ("runs[-1].quality.pings"), "" for the file itself
    why: str  # "absent", "not a number", "not valid JSON (...)"

    def __str__(self) -> str:
        return f"{self.source} {self.key}: {self.why}" if self.key else f"{self.source}: {self.why}"


@dataclass(frozen=True)
class MonthEntry:
    """A month of the manifest (``months.YYYY-MM``): the run that computed it and its totals."""

    month: str
    run_id: str | None
    vehicles_active: int | None
    distance_km_unweighted: float | None
    distance_km_outside_mainland_unweighted: float | None
    co2_t: float | None
    fixes: dict[str, int]
    unobserved_gaps: int | None = None  # gaps not attributed (too long or too fast to bridge)
    unobserved_km_unweighted: float | None = None  # their straight-line displacement
    # kept segments by duration bin: {bin: {attributed_segments, attributed_km, unobserved_..., implausible_...}}
    segments_by_duration: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class Counts:
    """Rows read, kept and quarantined by reason (pings or vehicles of a run's quality record)."""

    read: int | None
    kept: int | None
    quarantined: dict[str, int]
    other: dict[str, int] = field(default_factory=dict)  # outside_months_asked, registration_from_plate, ...


@dataclass(frozen=True)
class Quality:
    """A run's quality record (``runs[-1].quality``)."""

    pings: Counts | None
    vehicles: Counts | None
    trajectories: dict[str, float]


@dataclass(frozen=True)
class InputEntry:
    """An input file of a run: role (pings, vehicles, activity), path and hash (None when not hashed)."""

    role: str | None
    path: str | None
    hash: str | None
    rows: int | None = None  # pings files: data rows read, kept, and set aside by reason
    kept: int | None = None
    quarantined: dict[str, int] = field(default_factory=dict)
    warning: str | None = None  # what the run said about the file (many rows set aside, repeated rows, ...)


@dataclass(frozen=True)
class RunEntry:
    """A run of the manifest (``runs[-1]``)."""

    run_id: str | None
    months: list[str]
    inputs: list[InputEntry]
    quality: Quality | None
    config: dict[str, Any]


class RunFolder:
    """A run folder: the paths of its outputs, its lock and reruns, and its manifest's reader."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.missing: list[Missing] = []
        self._sinks: list[list[Missing]] = []
        self._manifest_cache: dict[str, Any] | None = None
        self._manifest_error: str | None = None
        self._manifest_read = False

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    # ------------------------------------------------------------------ layout

    def output(self, name: str) -> Path:
        """The folder of output ``name`` (one of :data:`OUTPUTS`)."""
        if name not in _OUTPUTS:
            raise KeyError(f"{name!r} is not an output of a run folder ({', '.join(_OUTPUTS)})")
        return self.path / name

    @property
    def inventory(self) -> Path:
        return self.output("inventory")

    @property
    def activity(self) -> Path:
        return self.output("activity")

    @property
    def quarantine(self) -> Path:
        return self.output("quarantine")

    @property
    def analysis(self) -> Path:
        return self.output("analysis")

    @property
    def forecast(self) -> Path:
        return self.output("forecast")

    @property
    def report(self) -> Path:
        return self.output("report")

    @property
    def database(self) -> Path:
        return self.path / DATABASE

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST

    def month_file(self, name: str, month: str) -> Path:
        """``<output>/YYYY-MM.parquet`` of a monthly output."""
        if _OUTPUTS.get(name, Output(name, "derived")).kind != "monthly":
            raise KeyError(f"{name!r} is not a monthly output of a run folder")
        return self.output(name) / f"{month}.parquet"

    def month_files(self, name: str) -> list[Path]:
        """The Parquet files of a monthly output, in month order (empty when the folder is absent)."""
        folder = self.output(name)
        return sorted(p for p in folder.glob("*.parquet") if not p.name.startswith(".")) if folder.is_dir() else []

    def looks_like_run(self) -> bool:
        """True when the folder holds a manifest or any output (what readers can render from)."""
        return self.manifest_path.is_file() or any(self.output(o.name).is_dir() for o in OUTPUTS)

    # ------------------------------------------------------------------ lock, reruns, recovery

    @property
    def _physical(self) -> Path:
        """Where the folder really is (symlinks resolved): the lock, staging and swap work there."""
        return Path(os.path.realpath(self.path))

    @property
    def lock_path(self) -> Path:
        return self._beside("lock")

    def _beside(self, kind: str, token: str | None = None) -> Path:
        real = self._physical
        return real.parent / (f".{real.name}.{kind}" + (f"-{token}" if token else ""))

    @contextmanager
    def lock(self, exclusive: bool = True) -> Iterator[None]:
        """Hold ``PARENT/.RUN.lock``: exclusive for a run, shared for a command writing into the folder.

        Never waits: a lock held by another process raises :class:`BusyError`. A shared
        lock that cannot be made (a read-only parent) is skipped. A killed holder's lock
        is released by the kernel. (No lock on Windows.)
        """
        if sys.platform == "win32" or (not exclusive and not self.path.exists()):
            yield  # no lock on Windows; nothing to protect in a folder that does not exist
            return
        import fcntl

        path = self.lock_path
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
                raise BusyError(self._busy(fd, exclusive)) from None
            if exclusive:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
            yield
        finally:
            os.close(fd)

    def _busy(self, fd: int, exclusive: bool) -> str:
        if exclusive:
            return (
                f"{self.path} is in use by another truckcarbon process (a run into it, or analyze, forecast or "
                f"report writing into it; lock {self.lock_path}); try again when it has finished"
            )
        pid = os.pread(fd, 32, 0).decode(errors="replace").strip()
        return (
            f"a run{f' (pid {pid})' if pid.isdigit() else ''} is writing {self.path} (lock {self.lock_path}); "
            "try again when it has finished"
        )

    @classmethod
    def open(cls, path: Path) -> RunFolder:
        """A run folder for reading; a fallback swap killed half-way is first recovered (when the lock is free)."""
        folder = cls(path)
        if not folder.path.exists() and folder._stale("old"):
            try:
                with folder.lock():
                    folder.recover()
            except (BusyError, OSError):
                pass  # a run holds the lock: it completes the swap or the next run recovers
        return folder

    def _stale(self, kind: str) -> list[Path]:
        real = self._physical
        prefix = f".{real.name}.{kind}-"
        if not real.parent.is_dir():
            return []
        return sorted(
            p for p in real.parent.iterdir() if p.name.startswith(prefix) and _TOKEN.fullmatch(p.name[len(prefix) :])
        )

    def recover(self) -> None:
        """Apply the recovery rule (see the module); call with the exclusive lock held."""
        real = self._physical
        for kind in ("staging", "work"):
            for p in self._stale(kind):
                _remove(p)
        olds = self._stale("old")
        if olds and not real.exists():
            os.rename(olds.pop(), real)  # a fallback swap killed between its renames: the old run back
        for p in olds:
            _remove(p)
        if real.is_dir():
            for p in real.glob("_work-*"):
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p, ignore_errors=True)

    @contextmanager
    def rerun(self) -> Iterator[Rerun]:
        """Lock the folder, recover, and give a staging folder (holding what the run keeps) and a work folder.

        The caller writes the new run into :attr:`Rerun.path` and calls :meth:`Rerun.commit`;
        leaving the block otherwise (an error) removes both folders and leaves ``RUN`` as it was.
        """
        real = self._physical
        if real.exists() and not real.is_dir():
            raise InputError(f"{self.path} is not a folder; give a run folder (new or written by `truckcarbon run`)")
        with self.lock():
            self.recover()
            if real.is_dir():
                self.manifest_data()  # an unreadable manifest stops the run before any work
            token = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:8]
            stage = Rerun(self, self._beside("staging", token), self._beside("work", token), token)
            try:
                stage.work.mkdir()
                if real.is_dir():
                    _link_tree(real, stage.path, _rewritten_by_run)
                else:
                    stage.path.mkdir()
                fault_point("staged")
                yield stage
            finally:
                _remove(stage.work)
                if not stage.committed:
                    _remove(stage.path)

    # ------------------------------------------------------------------ manifest: writer side

    def manifest_data(self) -> dict[str, Any]:
        """The manifest as written (a fresh dict; empty when absent), for the run that extends it.

        Raises :class:`InputError` when it is not a JSON object (a run must not drop its history)."""
        data, error = self._parse_manifest()
        if error is not None:
            raise InputError(f"{self.manifest_path}: {error}; move it away to start the run folder afresh")
        return data if data is not None else {}

    def _parse_manifest(self) -> tuple[dict[str, Any] | None, str | None]:
        """(the manifest, None), (None, None) when absent, or (None, why it cannot be used)."""
        path = self.manifest_path
        if not path.exists():
            return None, None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return None, f"not valid JSON ({exc})"
        except OSError as exc:
            return None, f"could not be read ({exc.strerror or exc})"
        if not isinstance(data, dict):
            return None, "not a JSON object"
        return data, None

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        """Write ``manifest.json`` (atomically)."""
        atomic_write_text(self.manifest_path, json.dumps(manifest, indent=1, ensure_ascii=False))

    # ------------------------------------------------------------------ manifest: typed reading

    @contextmanager
    def collect(self) -> Iterator[list[Missing]]:
        """The notices recorded while the block runs (one reader's, e.g. a report section's)."""
        sink: list[Missing] = []
        self._sinks.append(sink)
        try:
            yield sink
        finally:
            self._sinks.remove(sink)

    def note(self, source: str, key: str, why: str) -> None:
        """Record a :class:`Missing` notice (once in :attr:`missing`; in every running :meth:`collect`)."""
        m = Missing(source, key, why)
        for sink in (self.missing, *self._sinks):
            if m not in sink:
                sink.append(m)

    def manifest(self) -> dict[str, Any] | None:
        """The parsed manifest (read once), None when absent or unreadable (noted)."""
        if not self._manifest_read:
            self._manifest_read = True
            self._manifest_cache, self._manifest_error = self._parse_manifest()
        if self._manifest_cache is None:
            why = self._manifest_error or "absent (not written by `truckcarbon run`, or the run did not finish)"
            self.note(MANIFEST, "", why)
        return self._manifest_cache

    def months(self) -> dict[str, MonthEntry]:
        """``months`` of the manifest by label (empty when missing)."""
        m = self.manifest()
        raw = _take(self, m, "", "months", dict) if m is not None else None
        if raw is None:
            return {}
        out: dict[str, MonthEntry] = {}
        lacking: dict[str, list[str]] = {}
        fields = ("run_id", "vehicles_active", "distance_km_unweighted", "distance_km_outside_mainland_unweighted")
        for label, entry in sorted(raw.items()):
            if not isinstance(entry, dict):
                self.note(MANIFEST, f"months.{label}", "not a mapping")
                continue
            for key in (*fields, "co2_t", "fixes"):
                if key not in entry:
                    lacking.setdefault(key, []).append(label)
            fixes = entry.get("fixes")
            out[label] = MonthEntry(
                month=label,
                run_id=entry.get("run_id") if isinstance(entry.get("run_id"), str) else None,
                vehicles_active=_as_int(entry.get("vehicles_active")),
                distance_km_unweighted=_as_float(entry.get("distance_km_unweighted")),
                distance_km_outside_mainland_unweighted=_as_float(entry.get("distance_km_outside_mainland_unweighted")),
                co2_t=_as_float(entry.get("co2_t")),
                fixes=_int_map(fixes),
                # Written from the gap rules on: absent in older runs is not a notice.
                unobserved_gaps=_as_int(entry.get("unobserved_gaps")),
                unobserved_km_unweighted=_as_float(entry.get("unobserved_km_unweighted")),
                segments_by_duration={
                    str(b): {str(k): float(v) for k, v in row.items() if isinstance(v, int | float)}
                    for b, row in (entry.get("segments_by_duration") or {}).items()
                    if isinstance(row, dict)
                }
                if isinstance(entry.get("segments_by_duration"), dict)
                else {},
            )
        for key, labels in lacking.items():
            shown = ", ".join(labels[:3]) + (f" and {len(labels) - 3} more" if len(labels) > 3 else "")
            self.note(MANIFEST, f"months.*.{key}", f"absent in {len(labels)} of {len(raw)} months ({shown})")
        return out

    def latest_run(self) -> RunEntry | None:
        """``runs[-1]`` of the manifest (None when missing)."""
        run = self._latest()
        if run is None:
            return None
        p = "runs[-1]"
        return RunEntry(
            run_id=_take(self, run, p, "run_id", str),
            months=[str(x) for x in _take(self, run, p, "months", list) or []],
            inputs=self._inputs(run),
            quality=self._quality(run),
            config=_take(self, run, p, "config", dict) or {},
        )

    def quality(self) -> Quality | None:
        """The latest run's quality record (None when missing)."""
        run = self._latest()
        return self._quality(run) if run is not None else None

    def inputs(self) -> list[InputEntry]:
        """The latest run's input files (empty when missing)."""
        run = self._latest()
        return self._inputs(run) if run is not None else []

    def _latest(self) -> dict[str, Any] | None:
        m = self.manifest()
        runs = _take(self, m, "", "runs", list) if m is not None else None
        if runs is None:
            return None
        if not runs or not isinstance(runs[-1], dict):
            self.note(MANIFEST, "runs[-1]", "absent" if not runs else "not a mapping")
            return None
        latest: dict[str, Any] = runs[-1]
        return latest

    def _inputs(self, run: dict[str, Any]) -> list[InputEntry]:
        inputs = []
        for i, item in enumerate(_take(self, run, "runs[-1]", "inputs", list) or []):
            p = f"runs[-1].inputs[{i}]"
            if not isinstance(item, dict):
                self.note(MANIFEST, p, "not a mapping")
                continue
            digest = item.get("hash")
            inputs.append(
                InputEntry(
                    role=_take(self, item, p, "role", str),
                    path=_take(self, item, p, "path", str),
                    hash=digest if isinstance(digest, str) else None,  # null: not hashed (a URI)
                    # Written from 0.1 on for pings files only: absent is not a notice.
                    rows=item["rows"] if isinstance(item.get("rows"), int) else None,
                    kept=item["kept"] if isinstance(item.get("kept"), int) else None,
                    quarantined={str(k): v for k, v in (item.get("quarantined") or {}).items() if isinstance(v, int)}
                    if isinstance(item.get("quarantined"), dict)
                    else {},
                    warning=item["warning"] if isinstance(item.get("warning"), str) else None,
                )
            )
        return inputs

    def _quality(self, run: dict[str, Any]) -> Quality | None:
        p = "runs[-1].quality"
        q = _take(self, run, "runs[-1]", "quality", dict)
        if q is None:
            return None
        trajectories = _take(self, q, p, "trajectories", dict) or {}
        return Quality(
            pings=_counts(self, q, p, "pings"),
            vehicles=_counts(self, q, p, "vehicles"),
            trajectories={str(k): f for k, v in trajectories.items() if (f := _as_float(v)) is not None},
        )

    def method_formula(self) -> str | None:
        """``method.formula`` of the manifest."""
        m = self.manifest()
        method = _take(self, m, "", "method", dict) if m is not None else None
        return _take(self, method, "method", "formula", str) if method is not None else None

    def check_months(self, name: str = "inventory") -> list[str]:
        """Months the manifest names (with activity) whose file of output ``name`` is absent (each noted)."""
        have = {p.stem for p in self.month_files(name)}
        absent = []
        for label, entry in self.months().items():
            if label not in have and entry.vehicles_active != 0:
                self.note(f"{name}/{label}.parquet", "", "absent (the manifest names the month)")
                absent.append(label)
        return absent


@dataclass
class Rerun:
    """A run being written: the staging folder that becomes the run folder, and the work folder."""

    folder: RunFolder
    path: Path
    work: Path
    token: str
    committed: bool = False

    def commit(self) -> None:
        """Swap the staging folder in (see the module's rerun and recovery rules)."""
        target = self.folder._physical
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
        old = self.folder._beside("old", self.token)
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


# ---------------------------------------------------------------------- helpers


def _rewritten_by_run(rel: Path) -> bool:
    """True for what a run does not keep from the old folder (it writes it anew), and for garbage."""
    name = rel.name
    if name.startswith(".") and name.endswith(".part"):
        return True  # a temporary of atomic_path
    if len(rel.parts) == 1:
        if name in (DATABASE, DATABASE + ".wal") or name.startswith("_work-"):
            return True
        out = _OUTPUTS.get(name)
        return out is not None and out.kind == "run"
    return False


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


def _as_int(v: Any) -> int | None:
    return int(v) if isinstance(v, int | float) and not isinstance(v, bool) and float(v).is_integer() else None


def _as_float(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _int_map(v: Any) -> dict[str, int]:
    if not isinstance(v, dict):
        return {}
    return {str(k): n for k, x in v.items() if (n := _as_int(x)) is not None}


_KINDS: dict[type, str] = {dict: "a mapping", list: "a list", str: "a string", int: "a whole number"}


def _take(folder: RunFolder, obj: dict[str, Any], path: str, key: str, kind: type) -> Any:
    """``obj[key]`` when it is of ``kind``, else None (noted as absent or of the wrong type)."""
    full = f"{path}.{key}" if path else key
    if key not in obj:
        folder.note(MANIFEST, full, "absent")
        return None
    value = obj[key]
    ok = _as_int(value) is not None if kind is int else isinstance(value, kind)
    if not ok:
        folder.note(MANIFEST, full, f"not {_KINDS.get(kind, kind.__name__)}")
        return None
    return int(value) if kind is int else value


def _counts(folder: RunFolder, q: dict[str, Any], path: str, key: str) -> Counts | None:
    raw = _take(folder, q, path, key, dict)
    if raw is None:
        return None
    p = f"{path}.{key}"
    quarantined = _take(folder, raw, p, "quarantined", dict)
    other = {k: n for k, v in raw.items() if k not in ("read", "kept", "quarantined") and (n := _as_int(v)) is not None}
    return Counts(
        read=_take(folder, raw, p, "read", int),
        kept=_take(folder, raw, p, "kept", int),
        quarantined=_int_map(quarantined),
        other=other,
    )


__all__ = [
    "DATABASE",
    "MANIFEST",
    "OUTPUTS",
    "Counts",
    "InputEntry",
    "Missing",
    "MonthEntry",
    "Output",
    "Quality",
    "Rerun",
    "RunEntry",
    "RunFolder",
]
