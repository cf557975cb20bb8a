"""The Spark engine: the same validation and attribution step as the embedded engine, partitioned and sorted by Spark.

Flow (``run_pipeline(..., engine="spark")``, :class:`SparkEngine`):

1. Spark reads the pings Parquet files; every Arrow batch is validated by
   :func:`validate_pings` (the embedded engine's rules and reason codes);
   rejected rows go to the quarantine with their file (``input_file_name()``).
2. The rows are repartitioned by vehicle and sorted by (vehicle, time) within
   partitions before they reach Python, so that one ``mapInArrow`` pass per
   partition validates them and runs the attribution step of both engines
   (:func:`truckcarbon.pipeline.attribute.attribute`: kernel, emission method and
   vehicle attributes), which writes the activity rows.
3. The driver aggregates the activity rows into the monthly operating and
   registration inventories with DuckDB, as the embedded engine does
   (:func:`truckcarbon.pipeline.outputs.inventory_sql`), and writes every
   output (monthly activity and inventory files, the DuckDB file, the
   manifest).

PySpark is an extra (``pip install 'truckcarbon[spark]'``): without it,
:class:`SparkEngine` raises an :class:`InputError` that says so.

The locator index reaches executors once, as files shipped with
``SparkContext.addFile`` (memory-mapped there), not rebuilt per task.

Known gaps (raise :class:`SparkGapError` or are documented): CSV input (convert to
Parquet first); ``source_row`` of quarantined rows is null (Spark does not expose
a file's row numbers); side outputs (quarantine, counts, activity spill) are
written by executors to the run's work folder (``PARENT/.RUN.work-<token>``, beside
the run folder), so on a cluster the run folder's parent must be on a shared filesystem.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from truckcarbon.core.errors import InputError
from truckcarbon.core.schemas import LOAD_STATES
from truckcarbon.core.settings import cache_dir
from truckcarbon.geo.cache import get_index, index_cache_path
from truckcarbon.geo.index import index_crs
from truckcarbon.ingest.files import estimated_rows
from truckcarbon.ingest.pings import validate_pings
from truckcarbon.ingest.quarantine import REASONS, IngestCounts, quarantine_table
from truckcarbon.ingest.typed import PING_COLUMNS, typed_plan, validate_typed
from truckcarbon.pipeline.attribute import Tally, attribute
from truckcarbon.pipeline.engines import EngineName, Job
from truckcarbon.pipeline.reading import KERNEL_SCHEMA, Reading, in_index_crs, in_window, kernel_inputs, window_bounds

SOURCE_COLUMN = "_source_file"
INSTALL = "pip install 'truckcarbon[spark]'"


class SparkGapError(InputError):
    """Something the embedded engine does that the Spark engine does not (yet)."""


def pyspark_version() -> str:
    """The installed PySpark's version; :class:`InputError` saying how to install it when it is not."""
    try:
        import pyspark
    except ImportError:
        raise InputError(f"the Spark engine needs PySpark, which is not installed: {INSTALL}") from None
    return str(pyspark.__version__)


class SparkEngine:
    """PySpark in local mode or on a cluster (:class:`~truckcarbon.pipeline.engines.Engine`).

    ``master``: ``local[2]``, ``spark://host:7077``, ``yarn``, ...; None: the active session's, else
    ``local[2]``. Raises :class:`InputError` when PySpark is not installed."""

    name = EngineName.SPARK
    reads_uris = True

    def __init__(self, master: str | None = None) -> None:
        self.version = pyspark_version()
        self.master = master

    def description(self) -> str:
        """``spark (PySpark <version>)``, with the master when one is given (where the run ran)."""
        return (
            f"spark (PySpark {self.version}, master {self.master})"
            if self.master
            else f"spark (PySpark {self.version})"
        )

    def attribute_pings(self, job: Job) -> tuple[Reading, Tally]:
        """Passes 1 and 2 as Spark jobs (:func:`attribute_pings_spark`)."""
        job.report("read, clean and attribute (Spark)", 0, 1)
        done = attribute_pings_spark(job, self.master)
        job.report("read, clean and attribute (Spark)", 1, 1)
        return done

    def inventories(self, spill: Path, months: list[str]) -> None:
        """None: the run's DuckDB aggregation on the driver writes the inventories, as for the embedded engine.

        The activity rows are few (one per vehicle, month and city: about 70 million for a national month) and
        DuckDB sums them in a fixed order, so both engines' inventories are the same to the last bit; Spark SQL
        took 4.8 s of a 21.8 s run on 4.3 M pings for what DuckDB does in a fraction of a second."""
        return None


def spark_session(master: str | None = None) -> Any:
    """A Spark session (``local[2]`` unless ``master`` or an active session says otherwise)."""
    from pyspark.sql import SparkSession

    # Workers run this interpreter (with truckcarbon and its pinned dependencies), unless told otherwise.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = SparkSession.builder.appName("truckcarbon")
    if master:
        builder = builder.master(master)
    elif SparkSession.getActiveSession() is None:
        builder = builder.master("local[2]")
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")
    session = (
        builder.config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.pyspark.python", sys.executable)
        .config("spark.pyspark.driver.python", sys.executable)
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(1 << 18))
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    return session


def _worker_locator(crs: str, index_name: str, shipped: list[str]) -> Any:
    """The executor's locator, from the shipped index files (cached per Python worker).

    ``SparkContext.addFile`` ships files, not folders, to a cluster (a folder only in local mode): the index's
    files arrive side by side in the executor's file root, and the first Python worker to need them links them
    into the index's folder (made aside and renamed into place: the workers of an executor race for it)."""
    from pyspark import SparkFiles

    from truckcarbon.geo.locator import CityLocator

    cache = _worker_locator.__dict__.setdefault("cache", {})
    if crs not in cache:
        root = Path(SparkFiles.getRootDirectory()).resolve()  # links need an absolute target
        if all((root / name).exists() for name in shipped):
            base = root / "truckcarbon-index"
            folder = base / index_name
            if not folder.exists():
                tmp = base / f".{index_name}.{os.getpid()}"
                tmp.mkdir(parents=True, exist_ok=True)
                for name in shipped:
                    (tmp / name).unlink(missing_ok=True)
                    (tmp / name).symlink_to(root / name)
                try:
                    tmp.rename(folder)
                except OSError:  # another worker's folder is in place
                    shutil.rmtree(tmp, ignore_errors=True)
            os.environ["TRUCKCARBON_CACHE_DIR"] = str(base)
        cache[crs] = CityLocator(crs)
    return cache[crs]


def attribute_pings_spark(job: Job, master: str | None = None) -> tuple[Reading, Tally]:
    """Spark's passes 1 and 2 with the embedded engine's contract (:meth:`Engine.attribute_pings
    <truckcarbon.pipeline.engines.Engine.attribute_pings>`)."""
    from pyspark.sql import functions as sf

    files, vehicles, ids, months, config, work, spill = (
        job.files, job.vehicles, job.ids, job.months, job.config, job.work, job.spill,
    )  # fmt: skip
    local = [f for f in files if isinstance(f, Path)]
    not_parquet = [f for f in local if not f.name.lower().endswith((".parquet", ".pq"))]
    if not_parquet:
        raise SparkGapError(
            f"the Spark engine reads Parquet only; {not_parquet[0]} is not (convert CSV with "
            "`truckcarbon run` on the embedded engine or any Parquet writer first)"
        )
    spark = spark_session(master)
    crs = index_crs(config.crs)
    index = get_index(crs)  # built once on the driver, then shipped
    index_dir = index_cache_path(crs, True, cache_dir())
    shipped = sorted(p.name for p in index_dir.iterdir() if p.is_file())
    for name in shipped:  # files, not the folder: a cluster takes no folder (_worker_locator)
        spark.sparkContext.addFile(str(index_dir / name))
    del index
    rules = config.ingest_rules()
    bounds = window_bounds(months, int(config.context_hours * 3600))
    quarantine_dir = work / "quarantine" / "pings"
    counts_dir = work / "counts"
    for d in (quarantine_dir, counts_dir):
        d.mkdir(parents=True, exist_ok=True)

    # Footers are checked on the driver first, so that a truncated file is named (Spark would only fail a task).
    local_rows = sum(estimated_rows(f) for f in local)
    try:
        df = spark.read.option("mergeSchema", "true").parquet(*[str(f) for f in files])
    except Exception as exc:  # a JVM-side read error (AnalysisException, Py4JJavaError)
        raise InputError(f"Spark could not read the pings {files[:3]}: {str(exc).splitlines()[0]}") from None
    present = [c for c in PING_COLUMNS if c in df.columns]
    # Each row's file travels as Spark's 32-bit hash of its name, not as its text (which doubled the
    # time of the shuffle and of the hand-off to Python); the names are looked up for quarantined rows.
    file_of = _file_names(spark, df.inputFiles())
    source = sf.hash(sf.input_file_name()) if file_of is not None else sf.input_file_name()
    # Load states travel as a code (their text only when it is none of the contract's): text doubled the
    # hand-off's time. They are a dictionary column again in Python (_load_state), as a Parquet file gives.
    selected = [c if c != "load_state" else _load_columns(sf.col(c)) for c in present]
    df = df.select(*[x for c in selected for x in (c if isinstance(c, tuple) else (c,))], source.alias(SOURCE_COLUMN))

    index_name = index_dir.name
    rows = local_rows if len(local) == len(files) else df.count()
    n_parts = max(2, int(np.ceil(rows / config.rows_per_partition)))

    def validate(part: int, batches: Any, counts: IngestCounts) -> Any:
        """Validated kernel inputs of one partition's raw batches; quarantine written beside.

        Typed columns (Parquet's) take the embedded engine's compiled rules (:func:`validate_typed`), rows
        set aside staying in the batch, marked; others :func:`validate_pings`. The same reason codes."""
        outside = 0
        for b, rb in enumerate(batches):
            table = pa.Table.from_batches([rb])
            sources = table[SOURCE_COLUMN]
            table = _load_state(table.drop_columns([SOURCE_COLUMN]))
            plan = typed_plan(table.schema)
            if plan is not None:
                if not table.num_rows:
                    continue
                for name in plan.read_dictionary:  # text read as a dictionary, as from a Parquet file
                    if not pa.types.is_dictionary(table.schema.field(name).type):
                        at = table.schema.get_field_index(name)
                        table = table.set_column(at, name, pc.dictionary_encode(table[name]))
                batch = table.combine_chunks().to_batches()[0]
                columns, reason, by_reason = validate_typed(batch, plan, ids, rules, "spark")
                bad = np.flatnonzero(reason >= 0)
                quarantined = dict(zip(REASONS, by_reason.tolist(), strict=True))
                counts.add(IngestCounts(batch.num_rows, batch.num_rows - bad.size, quarantined))
                if bad.size:
                    rows = pa.Table.from_batches([batch.select(list(plan.columns))]).take(pa.array(bad))
                    quarantine = quarantine_table(rows, reason[bad], "", np.zeros(bad.size, np.int64))
                fixes = pa.RecordBatch.from_arrays([*columns, pa.array(reason)], schema=KERNEL_SCHEMA)
            else:
                valid, quarantine, ingest = validate_pings(table, "spark", 0, ids, rules)
                counts.add(ingest)
                bad = np.flatnonzero(~_kept_mask(table.num_rows, quarantine) if quarantine.num_rows else [])
                fixes = kernel_inputs(valid)
            if bad.size:
                quarantine = quarantine.set_column(
                    quarantine.schema.get_field_index("source_file"),
                    "source_file",
                    pa.array(_source_names(sources.take(pa.array(bad)).to_pylist(), file_of), pa.string()),
                )
                quarantine = quarantine.set_column(
                    quarantine.schema.get_field_index("source_row"), "source_row", pa.nulls(len(bad), pa.int64())
                )
                # Named by partition and batch: a retried task overwrites its own files, never adds to them.
                pq.write_table(quarantine, quarantine_dir / f"part-{part:06d}-{b:05d}.parquet")
            fixes = in_index_crs(fixes, config.crs)
            need = in_window(fixes.column(1).to_numpy(), bounds)
            if need is not None and not need.all():
                outside += int(need.size - need.sum())
                fixes = fixes.filter(pa.array(need))
            if fixes.num_rows:
                yield fixes
        counts.quarantined["outside_window"] = outside

    def partition(batches: Any) -> Any:
        """One Python pass per partition (all of its vehicles, sorted): validation, kernel, emissions."""
        from pyspark import TaskContext

        context = TaskContext.get()
        part = context.partitionId() if context is not None else 0
        counts = IngestCounts()
        chunk = list(validate(part, batches, counts))
        outside = counts.quarantined.pop("outside_window", 0)
        record: dict[str, Any] = {
            "rows": counts.rows, "kept": counts.kept, "quarantined": counts.quarantined, "outside": outside,
            "by_month": {}, "stats": {},
        }  # fmt: skip
        if chunk:
            locator = _worker_locator(config.crs, index_name, shipped)
            done = attribute([pa.Table.from_batches(chunk)], part, locator, vehicles, months, config, spill)
            record["by_month"] = {str(m): c.tolist() for m, c in done.by_month.items()}
            record["stats"] = done.stats
            # Gaps and duration bins beside the counts (named by partition: a retried task overwrites them).
            pq.write_table(done.gaps_table(), counts_dir / f"gaps-{part:06d}.parquet")
            pq.write_table(done.gap_bins_table(), counts_dir / f"bins-{part:06d}.parquet")
        (counts_dir / f"part-{part:06d}.json").write_text(json.dumps(record))
        yield pa.RecordBatch.from_pylist([], schema=pa.schema([("done", pa.int8())]))

    try:
        (
            df.repartition(n_parts, "vehicle_id")
            .sortWithinPartitions("vehicle_id", "ts")
            .mapInArrow(partition, "done tinyint")
            .collect()
        )
    except Exception as exc:  # a failed Spark job: its first line says why
        raise InputError(f"the Spark job failed: {str(exc).splitlines()[0][:500]}") from None
    reading = Reading()
    records = [json.loads(f.read_text()) for f in sorted(counts_dir.glob("part-*.json"))]
    for d in records:
        reading.ingest.rows += d["rows"]
        reading.ingest.kept += d["kept"]
        for k, v in d["quarantined"].items():
            reading.ingest.quarantined[k] = reading.ingest.quarantined.get(k, 0) + v
        reading.outside_window += d["outside"]
    # A URI is recorded as given: its files are read by the executors, not hashed on the driver.
    reading.inputs = [
        {"role": "pings", "path": str(f), "hash": job.digests[f].result() if isinstance(f, Path) else None}
        for f in files
    ]
    tally = Tally()
    for d in records:
        by_month = {int(m): np.asarray(c, np.int64) for m, c in d["by_month"].items()}
        tally.add(Tally(by_month, {k: float(v) for k, v in d["stats"].items()}))
    tally.gaps = [pq.read_table(f) for f in sorted(counts_dir.glob("gaps-*.parquet"))]
    tally.gap_bins = [pq.read_table(f) for f in sorted(counts_dir.glob("bins-*.parquet"))]
    return reading, tally


LOAD_CODE, LOAD_TEXT = "_load_code", "_load_text"


def _load_columns(load: Any) -> tuple[Any, Any]:
    """Spark columns of a load state: its code (the index in :data:`LOAD_STATES`; null when null or none of
    them) and its text only when it is none of them."""
    from pyspark.sql import functions as sf

    code = None
    for k, state in reversed(list(enumerate(LOAD_STATES))):
        code = sf.when(load == state, sf.lit(k)) if code is None else sf.when(load == state, sf.lit(k)).otherwise(code)
    assert code is not None
    return code.cast("tinyint").alias(LOAD_CODE), sf.when(load.isNotNull() & code.isNull(), load).alias(LOAD_TEXT)


def _load_state(table: pa.Table) -> pa.Table:
    """The load state of :func:`_load_columns` as the dictionary column a Parquet file gives (the texts that
    are no load state after the contract's: the rules set them aside, the quarantine shows them)."""
    if LOAD_CODE not in table.column_names:
        return table
    code = table[LOAD_CODE].combine_chunks()
    text = table[LOAD_TEXT].combine_chunks().cast(pa.string())
    others = pc.unique(text.drop_null())
    dictionary = pa.concat_arrays([pa.array(LOAD_STATES, pa.string()), others])
    other_index = pc.add(pc.index_in(text, value_set=others), len(LOAD_STATES))
    indices = pc.coalesce(code.cast(pa.int32()), other_index)
    state = pa.DictionaryArray.from_arrays(indices, dictionary)
    at = table.schema.get_field_index(LOAD_CODE)
    return table.drop_columns([LOAD_CODE, LOAD_TEXT]).add_column(at, "load_state", state)


def _file_names(spark: Any, names: list[str]) -> dict[int, str] | None:
    """Spark's hash (``hash(input_file_name())``) of each input file's name -> the name; None when two names
    share a hash (the rows then carry the names themselves)."""
    from pyspark.sql import functions as sf

    if not names:
        return {}
    hashed = spark.createDataFrame([(n,) for n in names], "name string").select("name", sf.hash("name")).collect()
    file_of = {int(h): str(n) for n, h in hashed}
    return file_of if len(file_of) == len(set(names)) else None


def _source_names(sources: list[Any], file_of: dict[int, str] | None) -> list[str]:
    """The files of quarantined rows, from their names or their hashes (:func:`_file_names`): a local file
    as its path (a ``file://`` URI decoded), any other as its URI."""
    uris = sources if file_of is None else [file_of.get(h, f"(a file Spark hashes to {h})") for h in sources]
    return [unquote(u.removeprefix("file://")) if u.startswith("file://") else u for u in uris]


def _kept_mask(n: int, quarantine: pa.Table) -> npt.NDArray[np.bool_]:
    """Rows of a batch that were not quarantined (from the quarantine's 1-based ``source_row``)."""
    kept = np.ones(n, bool)
    kept[np.asarray(quarantine["source_row"].to_numpy(), dtype=np.int64) - 1] = False
    return kept


__all__ = [
    "SparkEngine",
    "SparkGapError",
    "attribute_pings_spark",
    "pyspark_version",
    "spark_session",
]
