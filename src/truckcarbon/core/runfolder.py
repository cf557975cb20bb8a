"""The run folder: its layout, the typed reading and writing of its tables, and its manifest.

Layout (``RUN/``, written by ``truckcarbon run`` and the commands that read it)::

    inventory/YYYY-MM.parquet   per month (kept across incremental runs; a run rewrites the months it computes)
    activity/YYYY-MM.parquet    per month (likewise)
    quarantine/                 replaced as a whole by every run
    truckcarbon.duckdb          rebuilt by every run
    manifest.json               rewritten by every run, last
    analysis/ forecast/ report/ written by ``analyze``, ``forecast``, ``report``; a run keeps them

An output subfolder is one line of :data:`OUTPUTS` (its name, whether it holds one
file per month, is replaced by each run, or is written by a later command, and the
command that writes it); :meth:`RunFolder.output` and :meth:`RunFolder.month_file`
give its paths.

**Tables.** Every reader and writer of the folder goes through :class:`RunFolder`:
:meth:`~RunFolder.read_inventory` and :meth:`~RunFolder.read_activity` (all months as
one table), :meth:`~RunFolder.read_analysis` / :meth:`~RunFolder.write_analysis` and
:meth:`~RunFolder.read_forecast` / :meth:`~RunFolder.write_forecast` (``NAME.parquet``
beside ``NAME.csv``), :meth:`~RunFolder.read_json` / :meth:`~RunFolder.write_json`
(``analysis.json``, ``peak.json``). A derived table that is absent or unreadable
raises :class:`OutputError`, whose message names the file and the command that
writes it.

**Lock and reruns** (:meth:`RunFolder.lock`, :meth:`RunFolder.rerun`,
:meth:`RunFolder.recover`): see :mod:`truckcarbon.core.rerun`.

**Manifest** (:meth:`RunFolder.open`): typed accessors (:meth:`~RunFolder.months`,
:meth:`~RunFolder.latest_run`, :meth:`~RunFolder.quality`, :meth:`~RunFolder.inputs`,
:meth:`~RunFolder.method_formula`; the records are in
:mod:`truckcarbon.core.manifest_read`) tolerate a missing manifest, missing or older
keys and wrong types: they return None or empty values and record a :class:`Missing`
notice (file, key path, why) in :attr:`RunFolder.missing` (and in every
:meth:`RunFolder.collect` block running), so that each reader says what it lacked
and renders the rest.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from truckcarbon.core import rerun as _rerun
from truckcarbon.core.errors import BusyError, InputError
from truckcarbon.core.files import atomic_path, atomic_write_text
from truckcarbon.core.manifest_read import (
    InputEntry,
    MonthEntry,
    Quality,
    RunEntry,
    latest_run,
    parse_formula,
    parse_inputs,
    parse_manifest_file,
    parse_months,
    parse_quality,
    parse_run,
)

MANIFEST = "manifest.json"
DATABASE = "truckcarbon.duckdb"

OutputKind = Literal["monthly", "run", "derived"]


@dataclass(frozen=True)
class Output:
    """An output subfolder of a run folder and the command that writes it.

    ``monthly``: one ``YYYY-MM.parquet`` per month, kept across runs (a run rewrites the months it computes);
    ``run``: replaced as a whole by every run; ``derived``: written by a later command, kept by runs.
    """

    name: str
    kind: OutputKind
    writer: str = "truckcarbon run"


OUTPUTS: tuple[Output, ...] = (
    Output("inventory", "monthly"),
    Output("activity", "monthly"),
    Output("unobserved", "monthly"),
    Output("quarantine", "run"),
    Output("analysis", "derived", "truckcarbon analyze"),
    Output("forecast", "derived", "truckcarbon forecast"),
    Output("report", "derived", "truckcarbon report"),
)
_OUTPUTS = {o.name: o for o in OUTPUTS}
_MONTHLY_NOUN = {"inventory": "an inventory", "activity": "an activity table", "unobserved": "an unobserved table"}


@dataclass(frozen=True)
class Missing:
    """Something a reader looked for in a run folder and did not find (or could not use)."""

    source: str  # a file of the run folder: "manifest.json", "inventory/2022-02.parquet"
    key: str  # the key path inside it ("runs[-1].quality.pings"), "" for the file itself
    why: str  # "absent", "not a number", "not valid JSON (...)"

    def __str__(self) -> str:
        return f"{self.source} {self.key}: {self.why}" if self.key else f"{self.source}: {self.why}"


class OutputError(InputError):
    """A file of a run folder's output that a reader needs is absent or unreadable.

    ``source`` is the file inside the run folder (``analysis/top_cities.parquet``), ``why``
    what is wrong with it (``absent``, ``could not be read (...)``)."""

    def __init__(self, message: str, source: str, why: str) -> None:
        super().__init__(message)
        self.source = source
        self.why = why


class RunFolder:
    """A run folder: the paths of its outputs, its tables, its lock and reruns, and its manifest's reader."""

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

    def table_path(self, name: str, table: str) -> Path:
        """``<output>/<table>.parquet`` of a derived output (``analysis``, ``forecast``)."""
        if _OUTPUTS.get(name, Output(name, "monthly")).kind != "derived":
            raise KeyError(f"{name!r} is not a derived output of a run folder")
        return self.output(name) / f"{table}.parquet"

    def json_path(self, name: str, file: str) -> Path:
        """``<output>/<file>.json`` of a derived output (``analysis.json``, ``peak.json``)."""
        return self.table_path(name, file).with_suffix(".json")

    def looks_like_run(self) -> bool:
        """True when the folder holds a manifest or any output (what readers can render from)."""
        return self.manifest_path.is_file() or any(self.output(o.name).is_dir() for o in OUTPUTS)

    # ------------------------------------------------------------------ tables

    def read_monthly(self, name: str, columns: Sequence[str] | None = None) -> pa.Table:
        """Every month of a monthly output as one table (month order), of ``columns`` only when given.

        Raises :class:`InputError` when the output has no month or lacks one of ``columns``."""
        files = self.month_files(name)
        folder = self.output(name)
        if not files:
            raise InputError(f"{self.path}: no {name} (expected {folder}/YYYY-MM.parquet); run `truckcarbon run` first")
        table = pa.concat_tables([pq.read_table(f) for f in files], promote_options="permissive")
        if columns is None:
            return table
        lacking = [c for c in columns if c not in table.column_names]
        if lacking:
            noun = _MONTHLY_NOUN.get(name, f"a {name} table")
            raise InputError(f"{folder}: not {noun}, missing column(s) {', '.join(lacking)}")
        return table.select(list(columns))

    def read_inventory(self, columns: Sequence[str] | None = None) -> pa.Table:
        """The inventory (``inventory/*.parquet``) as one table; see :meth:`read_monthly`."""
        return self.read_monthly("inventory", columns)

    def read_activity(self, columns: Sequence[str] | None = None) -> pa.Table:
        """The activity (``activity/*.parquet``) as one table; see :meth:`read_monthly`."""
        return self.read_monthly("activity", columns)

    def read_table(self, name: str, table: str) -> pa.Table:
        """``<output>/<table>.parquet`` of a derived output; :class:`OutputError` when absent or unreadable."""
        path = self.table_path(name, table)
        source = f"{name}/{table}.parquet"
        if not path.exists():
            raise OutputError(f"{path} is missing (run `{_OUTPUTS[name].writer} --run {self.path}`)", source, "absent")
        try:
            return pq.read_table(path)
        except (OSError, pa.ArrowInvalid) as exc:
            raise OutputError(f"{path} could not be read ({exc})", source, f"could not be read ({exc})") from None

    def write_table(self, name: str, table: str, data: pa.Table) -> None:
        """``<output>/<table>.parquet`` and ``<table>.csv`` (UTF-8) of a derived output, each written atomically."""
        path = self.table_path(name, table)
        with atomic_path(path) as tmp:
            pq.write_table(data, tmp)
        with atomic_path(path.with_suffix(".csv")) as tmp:
            pacsv.write_csv(data, tmp)

    def read_analysis(self, table: str) -> pa.Table:
        """``analysis/<table>.parquet`` (written by ``truckcarbon analyze``)."""
        return self.read_table("analysis", table)

    def write_analysis(self, table: str, data: pa.Table) -> None:
        """``analysis/<table>.parquet`` and ``.csv``."""
        self.write_table("analysis", table, data)

    def read_forecast(self, table: str) -> pa.Table:
        """``forecast/<table>.parquet`` (written by ``truckcarbon forecast``)."""
        return self.read_table("forecast", table)

    def write_forecast(self, table: str, data: pa.Table) -> None:
        """``forecast/<table>.parquet`` and ``.csv``."""
        self.write_table("forecast", table, data)

    def read_json(self, name: str, file: str) -> Any:
        """``<output>/<file>.json`` of a derived output, parsed; :class:`OutputError` when absent or not JSON."""
        path = self.json_path(name, file)
        writer = _OUTPUTS[name].writer
        source = f"{name}/{file}.json"
        if not path.exists():
            raise OutputError(f"{path} is missing (run `{writer} --run {self.path}`)", source, "absent")
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            why = f"not valid JSON ({exc})"
            raise OutputError(f"{path} is {why}; run `{writer}` again", source, why) from None
        except OSError as exc:
            why = f"could not be read ({exc})"
            raise OutputError(f"{path} {why}", source, why) from None

    def write_json(self, name: str, file: str, data: Any) -> None:
        """``<output>/<file>.json`` of a derived output (indented, UTF-8, written atomically)."""
        text = json.dumps(data, indent=1, ensure_ascii=False)
        atomic_write_text(self.json_path(name, file), text)

    # ------------------------------------------------------------------ lock, reruns, recovery

    @property
    def _physical(self) -> Path:
        """Where the folder really is (symlinks resolved): the lock, staging and swap work there."""
        return Path(os.path.realpath(self.path))

    @property
    def lock_path(self) -> Path:
        return _rerun.beside(self._physical, "lock")

    @contextmanager
    def lock(self, exclusive: bool = True) -> Iterator[None]:
        """Hold ``PARENT/.RUN.lock``: exclusive for a run, shared for a command writing into the folder.

        Never waits: a lock held by another process raises :class:`BusyError`
        (see :func:`truckcarbon.core.rerun.hold_lock`)."""
        with _rerun.hold_lock(self.path, self._physical, exclusive):
            yield

    @classmethod
    def open(cls, path: Path) -> RunFolder:
        """A run folder for reading; a fallback swap killed half-way is first recovered (when the lock is free)."""
        folder = cls(path)
        if not folder.path.exists() and _rerun.stale(folder._physical, "old"):
            try:
                with folder.lock():
                    folder.recover()
            except (BusyError, OSError):
                pass  # a run holds the lock: it completes the swap or the next run recovers
        return folder

    def recover(self) -> None:
        """Apply the recovery rule (:mod:`truckcarbon.core.rerun`); call with the exclusive lock held."""
        _rerun.recover(self._physical)

    @contextmanager
    def rerun(self) -> Iterator[_rerun.Rerun]:
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
            with _rerun.staged_rerun(real, _rewritten_by_run) as stage:
                yield stage

    # ------------------------------------------------------------------ manifest: writer side

    def manifest_data(self) -> dict[str, Any]:
        """The manifest as written (a fresh dict; empty when absent), for the run that extends it.

        Raises :class:`InputError` when it is not a JSON object (a run must not drop its history)."""
        data, error = parse_manifest_file(self.manifest_path)
        if error is not None:
            raise InputError(f"{self.manifest_path}: {error}; move it away to start the run folder afresh")
        return data if data is not None else {}

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

    def _note_manifest(self, key: str, why: str) -> None:
        self.note(MANIFEST, key, why)

    def manifest(self) -> dict[str, Any] | None:
        """The parsed manifest (read once), None when absent or unreadable (noted)."""
        if not self._manifest_read:
            self._manifest_read = True
            self._manifest_cache, self._manifest_error = parse_manifest_file(self.manifest_path)
        if self._manifest_cache is None:
            why = self._manifest_error or "absent (not written by `truckcarbon run`, or the run did not finish)"
            self.note(MANIFEST, "", why)
        return self._manifest_cache

    def months(self) -> dict[str, MonthEntry]:
        """``months`` of the manifest by label (empty when missing)."""
        m = self.manifest()
        return parse_months(m, self._note_manifest) if m is not None else {}

    def latest_run(self) -> RunEntry | None:
        """``runs[-1]`` of the manifest (None when missing)."""
        run = self._latest()
        return parse_run(run, self._note_manifest) if run is not None else None

    def quality(self) -> Quality | None:
        """The latest run's quality record (None when missing)."""
        run = self._latest()
        return parse_quality(run, self._note_manifest) if run is not None else None

    def inputs(self) -> list[InputEntry]:
        """The latest run's input files (empty when missing)."""
        run = self._latest()
        return parse_inputs(run, self._note_manifest) if run is not None else []

    def _latest(self) -> dict[str, Any] | None:
        m = self.manifest()
        return latest_run(m, self._note_manifest) if m is not None else None

    def method_formula(self) -> str | None:
        """``method.formula`` of the manifest."""
        m = self.manifest()
        return parse_formula(m, self._note_manifest) if m is not None else None

    def check_months(self, name: str = "inventory") -> list[str]:
        """Months the manifest names (with activity) whose file of output ``name`` is absent (each noted)."""
        have = {p.stem for p in self.month_files(name)}
        absent = []
        for label, entry in self.months().items():
            if label not in have and entry.vehicles_active != 0:
                self.note(f"{name}/{label}.parquet", "", "absent (the manifest names the month)")
                absent.append(label)
        return absent


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


__all__ = ["DATABASE", "MANIFEST", "OUTPUTS", "Missing", "Output", "OutputError", "RunFolder"]
