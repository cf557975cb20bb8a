"""Which terminal is bound to which vehicle, and how it proves it is that terminal.

A terminal (its phone number, the identity in every frame header) registers once
(0x0100) and is given an authentication code (0x8100), which it presents on
every new connection (0x0102). The registry keeps:

- one binding per terminal: vehicle id, plate, terminal id; one terminal per
  vehicle and per plate;
- the code as a salted SHA-256 digest only, compared in constant time on bytes.
  A code is sent once, to the registration that created it; nobody can ask for it
  again. A terminal already bound registers again only from its authenticated
  session (it is given a new code; the old one stops working) or after it was
  released: by an operator (:func:`queue_release`, ``truckcarbon gateway
  terminals release``) or by the terminal itself with 0x0003 from its
  authenticated session. Otherwise the registration is answered with result 3,
  "terminal already registered".

Phone numbers are kept as text exactly as sent; they are compared without the
left zero padding of their BCD field (``13800000001`` is ``013800000001`` in a
2013 header and ``00000000013800000001`` in a 2019 one). Vehicle ids are kept as
given: integers when the vehicles table has integer ids (or none is given),
else text (``鲁A12345``, ``013912345678``).

Files in the data folder: ``terminals.json`` (snapshot), ``terminals.jsonl``
(journal: one fsynced line per binding or release, folded into the snapshot at
the next start), ``terminals.lock`` (held while a binding or release is decided
and written), ``operator/*.json`` (releases queued by the operator, applied by
the running gateway within a second, or at its next start).

Several processes (``truckcarbon gateway --workers N``) share one registry: each
decides a registration or release under the lock, after reading what the others
appended to the journal, and reads the journal again before every
authentication, so a code renewed or a terminal released in one process is void
in all of them at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from truckcarbon.core.errors import InputError
from truckcarbon.core.files import atomic_write_text
from truckcarbon.jt808.messages import RegisterResult, Registration

VehicleId = int | str
MAX_VEHICLE_ID_BYTES = 32  # UTF-8 bytes of a text vehicle id (the write-ahead log's field)
INT64 = (-(2**63), 2**63 - 1)
_CANONICAL_INT = re.compile(r"-?[1-9][0-9]*|0")


def canonical_phone(phone: str) -> str:
    """A phone number without the zero padding of its BCD field: the key it is compared by."""
    return phone.lstrip("0") or "0"


def id_kind(vid: VehicleId) -> str:
    return "text" if isinstance(vid, str) else "int"


def check_vehicle_id(vid: VehicleId, where: str) -> VehicleId:
    """``vid`` if the gateway can store it (an int64, or text of 1..32 UTF-8 bytes without NUL)."""
    if isinstance(vid, bool) or not isinstance(vid, int | str):
        raise InputError(f"{where}: vehicle id {vid!r} is neither an integer nor text")
    if isinstance(vid, int):
        if not INT64[0] <= vid <= INT64[1]:
            raise InputError(f"{where}: vehicle id {vid} does not fit 64 bits")
    elif not vid or "\x00" in vid or len(vid.encode("utf-8")) > MAX_VEHICLE_ID_BYTES:
        raise InputError(f"{where}: vehicle id {vid!r} must be 1..{MAX_VEHICLE_ID_BYTES} UTF-8 bytes without NUL")
    return vid


def _digest(salt: bytes, code: bytes) -> bytes:
    return hashlib.sha256(salt + code).digest()


def _hashed(code: str) -> dict[str, str]:
    salt = secrets.token_bytes(16)
    return {"salt": salt.hex(), "auth_hash": _digest(salt, code.encode("ascii")).hex()}


def _read_state(path: Path, journal: bool = True) -> tuple[dict[str, dict[str, Any]], bool]:
    """Bindings by canonical phone from the snapshot and the journal; True when a plain-text code was found."""
    raw: dict[str, dict[str, Any]] = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    terminals: dict[str, dict[str, Any]] = {}
    for phone, entry in raw.items():
        terminals[canonical_phone(phone)] = {"phone": phone, **{k: v for k, v in entry.items() if k != "phone"}}
    journal_path = path.with_suffix(".jsonl")
    if journal and journal_path.exists():
        for line in journal_path.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(ValueError, KeyError, TypeError, AttributeError):  # a torn last line
                item = json.loads(line)
                op = item.pop("op", "bind")
                key = canonical_phone(str(item["phone"]))
                if op == "release":
                    terminals.pop(key, None)
                else:
                    terminals[key] = item
    plain = False
    for entry in terminals.values():
        code = entry.pop("auth_code", None)  # written by versions that kept the code itself
        if isinstance(code, str):
            entry.update(_hashed(code))
            plain = True
    return terminals, plain


class Registry:
    """Terminal bindings and their codes (see the module docstring), persisted before every answer.

    The 0x8100 result of a registration, checked in this order:

    - 4 no such terminal: ``known_terminals`` is given and the phone is not in it.
    - 3 terminal already registered: the phone is bound, and the registration does
      not come from the terminal's own authenticated session with the same plate
      and terminal id (which gets a new code: 0).
    - 2 no such vehicle: ``known_vehicles`` is given and the plate is not in it.
    - 1 vehicle already registered: the plate, or the vehicle id the registration
      would get, is bound to another terminal.
    - 0 success: a new binding, with a new code.

    The vehicle id comes from ``known_vehicles`` when given; else, with integer
    ids, from a terminal id of ASCII digits (replay uses it) or the largest id so
    far plus one; with text ids, the plate, else the phone as sent.
    """

    def __init__(
        self,
        path: Path,
        known_vehicles: Mapping[str, VehicleId] | None = None,
        known_terminals: frozenset[str] | None = None,
        fold: bool = True,
    ) -> None:
        """``fold``: fold the journal into the snapshot (only where no other process uses the registry)."""
        self.path = path
        self.journal = path.with_suffix(".jsonl")
        self.lock_path = path.with_suffix(".lock")
        self.offset = 0  # bytes of the journal read
        if fold:
            with self.locked():
                self.terminals, plain = _read_state(path)
                if self.journal.exists() or plain:
                    # Fold the journal into the snapshot (atomically), then start an empty journal.
                    atomic_write_text(path, json.dumps(self._snapshot(), ensure_ascii=False))
                    self.journal.unlink(missing_ok=True)
        else:
            self.terminals, _ = _read_state(path, journal=False)
        self.known_vehicles = known_vehicles
        self.known_terminals = None if known_terminals is None else {canonical_phone(p) for p in known_terminals}
        self._reindex()
        self.refresh()
        kinds = {id_kind(t["vehicle_id"]) for t in self.terminals.values()}
        listed = {id_kind(v) for v in (known_vehicles or {}).values()}
        if len(kinds | listed) > 1:
            raise InputError(
                f"{path}: terminals are bound to {'/'.join(sorted(kinds))} vehicle ids and the vehicles table has "
                f"{'/'.join(sorted(listed))} ids; one gateway data folder holds one kind (use a new --data folder)"
            )
        self.id_kind = next(iter(kinds | listed), "int")

    def _reindex(self) -> None:
        """The vehicle ids and plates bound, from the bindings (kept up to date by :meth:`_apply`)."""
        self.vehicle_ids: set[VehicleId] = {t["vehicle_id"] for t in self.terminals.values()}
        self.plates = {t["plate"] for t in self.terminals.values() if t.get("plate")}

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the registry's lock (an exclusive ``flock`` on ``terminals.lock``), shared by every process."""
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def refresh(self) -> set[str]:
        """Read what other processes appended to the journal; the canonical phones whose binding changed."""
        try:
            size = os.stat(self.journal).st_size
        except FileNotFoundError:
            size = 0
        if size == self.offset:
            return set()
        if size < self.offset:  # folded into the snapshot by a new start: read both again
            before = dict(self.terminals)
            self.terminals, _ = _read_state(self.path)
            self.offset = size
            self._reindex()
            return {k for k in before.keys() | self.terminals.keys() if before.get(k) != self.terminals.get(k)}
        with open(self.journal, "rb") as fh:
            fh.seek(self.offset)
            data = fh.read(size - self.offset)
        data = data[: data.rfind(b"\n") + 1]  # a line being written is read next time
        self.offset += len(data)
        changed = set()
        for line in data.splitlines():
            with contextlib.suppress(ValueError, KeyError, TypeError, AttributeError):
                changed.add(self._apply(json.loads(line)))
        return changed

    def _apply(self, item: dict[str, Any]) -> str:
        """One journal line applied to the bindings in memory; its canonical phone."""
        op = item.pop("op", "bind")
        key = canonical_phone(str(item["phone"]))
        old = self.terminals.pop(key, None)
        if old is not None:
            self.vehicle_ids.discard(old["vehicle_id"])
            self.plates.discard(old.get("plate", ""))
        if op != "release":
            self.terminals[key] = item
            self.vehicle_ids.add(item["vehicle_id"])
            if item.get("plate"):
                self.plates.add(item["plate"])
        return key

    def _write(self, line: dict[str, Any]) -> None:
        """Append one line to the journal (fsynced) and apply it; under :meth:`locked`, after :meth:`refresh`."""
        text = (json.dumps(line, ensure_ascii=False) + "\n").encode("utf-8")
        with open(self.journal, "ab") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        self.offset += len(text)
        self._apply(dict(line))

    def _snapshot(self) -> dict[str, dict[str, Any]]:
        return {e["phone"]: {k: v for k, v in e.items() if k != "phone"} for e in self.terminals.values()}

    def get(self, phone: str) -> dict[str, Any] | None:
        """The binding of ``phone`` (compared without zero padding), or None."""
        return self.terminals.get(canonical_phone(phone))

    @staticmethod
    def verify(entry: dict[str, Any], code: bytes) -> bool:
        """Whether ``code`` (the bytes the terminal sent) is the entry's code; constant time."""
        try:
            salt, want = bytes.fromhex(entry["salt"]), bytes.fromhex(entry["auth_hash"])
        except (KeyError, ValueError, TypeError):
            return False
        return hmac.compare_digest(_digest(salt, code), want)

    def allows(self, entry: dict[str, Any]) -> bool:
        """Whether a binding is still on the operator's allow-lists (they may have changed since it was made)."""
        if self.known_terminals is not None and canonical_phone(entry["phone"]) not in self.known_terminals:
            return False
        return self.known_vehicles is None or self.known_vehicles.get(entry.get("plate", "")) == entry["vehicle_id"]

    def authenticate(self, phone: str, code: bytes) -> dict[str, Any] | None:
        """The binding of ``phone`` if ``code`` is its code and the binding is still allowed, else None."""
        self.refresh()  # a code renewed or a release made by another process counts at once
        entry = self.get(phone)
        if entry is not None and self.verify(entry, code) and self.allows(entry):
            return entry
        return None

    def register(
        self, phone: str, reg: Registration, authenticated: bool = False
    ) -> tuple[RegisterResult, str, dict[str, Any] | None]:
        """The result code, the new authentication code ("" unless the result is 0) and the binding.

        ``authenticated``: the registration comes from a session authenticated as ``phone``.
        """
        with self.locked():
            self.refresh()
            return self._register(phone, reg, authenticated)

    def _register(
        self, phone: str, reg: Registration, authenticated: bool
    ) -> tuple[RegisterResult, str, dict[str, Any] | None]:
        key = canonical_phone(phone)
        if self.known_terminals is not None and key not in self.known_terminals:
            return RegisterResult.NO_SUCH_TERMINAL, "", None
        entry = self.terminals.get(key)
        if entry is not None:
            same = entry.get("plate", "") == reg.plate and entry.get("terminal_id", reg.terminal_id) == reg.terminal_id
            if not (authenticated and same):
                return RegisterResult.TERMINAL_REGISTERED, "", None
            code = secrets.token_hex(8)
            renewed = {**entry, **_hashed(code), "registered_at": int(time.time())}
            self._write(renewed)
            return RegisterResult.OK, code, renewed
        vid: VehicleId
        if self.known_vehicles is not None:
            if reg.plate not in self.known_vehicles:
                return RegisterResult.NO_SUCH_VEHICLE, "", None
            vid = self.known_vehicles[reg.plate]
        elif self.id_kind == "text":
            vid = reg.plate or phone
        elif reg.terminal_id.isascii() and reg.terminal_id.isdigit() and int(reg.terminal_id) <= INT64[1]:
            vid = int(reg.terminal_id)
        else:
            vid = max((int(v) for v in self.vehicle_ids), default=0) + 1
        if vid in self.vehicle_ids or (reg.plate and reg.plate in self.plates):
            return RegisterResult.VEHICLE_REGISTERED, "", None
        if isinstance(vid, str) and len(vid.encode("utf-8")) > MAX_VEHICLE_ID_BYTES:
            return RegisterResult.NO_SUCH_VEHICLE, "", None
        code = secrets.token_hex(8)
        entry = {"phone": phone, "vehicle_id": vid, "plate": reg.plate, "terminal_id": reg.terminal_id,
                 **_hashed(code), "registered_at": int(time.time())}  # fmt: skip
        # One fsynced journal line per registration (not a rewrite of every terminal), before the reply.
        self._write(entry)
        return RegisterResult.OK, code, entry

    def release(self, phone: str) -> dict[str, Any] | None:
        """Unbind ``phone`` (its vehicle and plate are free again); the binding removed, or None."""
        with self.locked():
            self.refresh()
            entry = self.terminals.get(canonical_phone(phone))
            if entry is not None:
                self._write({"op": "release", "phone": entry["phone"]})
            return entry

    def apply_operator_requests(self, folder: Path) -> list[tuple[str, dict[str, Any] | None]]:
        """Carry out the releases queued in ``folder`` (oldest first); (phone, binding removed or None) each."""
        done: list[tuple[str, dict[str, Any] | None]] = []
        if not folder.is_dir():
            return done
        for f in sorted(folder.glob("release-*.json")):
            try:
                phones = json.loads(f.read_text(encoding="utf-8"))["phones"]
            except (OSError, ValueError, KeyError, TypeError):
                continue  # being written (it is renamed into place whole) or not ours: left alone
            for phone in phones if isinstance(phones, list) else []:
                if isinstance(phone, str) and phone.isascii() and phone.isdigit():
                    done.append((phone, self.release(phone)))
            f.unlink(missing_ok=True)
        return done


def queue_release(data: Path, phones: list[str]) -> Path:
    """Ask the gateway of ``data`` to release terminals (it does within a second, or when it next starts)."""
    bad = [p for p in phones if not (p.isascii() and p.isdigit() and len(p) <= 20)]
    if bad or not phones:
        raise InputError(f"give terminal phone numbers (up to 20 digits): {', '.join(bad) or 'none given'}")
    if not (data / "terminals.json").exists() and not (data / "terminals.jsonl").exists():
        raise InputError(f"{data}: no gateway data folder (no terminals.json): give the gateway's --data")
    folder = data / "operator"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"release-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.json"
    atomic_write_text(target, json.dumps({"phones": phones}))
    return target


def read_bindings(data: Path) -> list[dict[str, Any]]:
    """The bindings of a gateway data folder, without codes, read only (safe while the gateway runs)."""
    terminals, _ = _read_state(data / "terminals.json")
    pending = set()
    for f in sorted((data / "operator").glob("release-*.json")) if (data / "operator").is_dir() else []:
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            pending |= {canonical_phone(str(p)) for p in json.loads(f.read_text(encoding="utf-8"))["phones"]}
    return [
        {
            "phone": e["phone"],
            "vehicle_id": e["vehicle_id"],
            "plate": e.get("plate", ""),
            "terminal_id": e.get("terminal_id", ""),
            "registered_at": e.get("registered_at"),
            "release_pending": key in pending,
        }
        for key, e in sorted(terminals.items())
    ]


def known_vehicles(path: Path) -> dict[str, VehicleId]:
    """Plate -> vehicle id from a vehicles table (Parquet or CSV with columns ``plate`` and ``vehicle_id``).

    Ids are kept as given: a Parquet integer column gives integers, a text column
    text; in a CSV file, ids that are all plain integers (no leading zero) are
    integers, otherwise every id is kept as its text (``013912345678``).
    """
    if not path.is_file():
        raise InputError(f"{path}: no such file; give the vehicles table (Parquet or CSV with plate, vehicle_id)")
    try:
        if path.suffix.lower() == ".csv":
            types = {"plate": pa.string(), "vehicle_id": pa.string()}
            table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types=types))
        else:
            table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        kind = "CSV" if path.suffix.lower() == ".csv" else "Parquet"
        raise InputError(f"{path}: cannot be read as {kind}: {exc}") from None
    missing = [c for c in ("plate", "vehicle_id") if c not in table.column_names]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}; the table needs plate and vehicle_id")
    ids: list[Any] = table["vehicle_id"].to_pylist()
    column = table.schema.field("vehicle_id").type
    if pa.types.is_string(column) or pa.types.is_large_string(column):
        texts = [v.strip() if isinstance(v, str) else v for v in ids]
        if path.suffix.lower() == ".csv" and all(v is None or _CANONICAL_INT.fullmatch(v) for v in texts):
            ids = [None if v is None else int(v) for v in texts]
        else:
            ids = texts
    elif not pa.types.is_integer(column):
        raise InputError(f"{path}: vehicle_id is {column}; it must be integers or text")
    out: dict[str, VehicleId] = {}
    for row, (plate, vid) in enumerate(zip(table["plate"].to_pylist(), ids, strict=True)):
        if plate is None or vid is None or vid == "":
            raise InputError(f"{path}: row {row + 1} has no plate or no vehicle_id")
        check_vehicle_id(vid, f"{path}: row {row + 1}")
        if plate in out and out[plate] != vid:
            raise InputError(f"{path}: row {row + 1}: plate {plate} is listed for vehicles {out[plate]} and {vid}")
        out[str(plate)] = vid
    return out


@dataclass(frozen=True)
class TerminalList:
    """The operator's terminal list: phone numbers as given, and those whose terminal has a load sensor."""

    phones: frozenset[str]
    load_sensors: frozenset[str]


LOAD_SENSOR_WORDS = {"load-sensor", "load_sensor", "load"}


def read_terminal_list(path: Path) -> TerminalList:
    """Terminal phone numbers from a text file, one per line: ``PHONE [load-sensor]``.

    Blank lines and ``#`` comments are ignored. ``load-sensor`` after the number
    says the terminal has a load sensor: its status bits 8-9 = 00 mean empty.
    Without it, 00 means the load is not known.
    """
    if not path.is_file():
        raise InputError(f"{path}: no such file; give a text file with one terminal phone number per line")
    phones: set[str] = set()
    sensors: set[str] = set()
    for row, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        phone, flags = words[0], [w.lower() for w in words[1:]]
        if not (phone.isascii() and phone.isdigit()) or len(phone) > 20:
            raise InputError(f"{path}: line {row}: {phone!r} is not a terminal phone number (up to 20 digits)")
        unknown = [w for w in flags if w not in LOAD_SENSOR_WORDS]
        if unknown:
            raise InputError(f"{path}: line {row}: {' '.join(unknown)!r}: after the number only 'load-sensor' may come")
        phones.add(phone)
        if flags:
            sensors.add(phone)
    return TerminalList(frozenset(phones), frozenset(sensors))


def known_terminals(path: Path) -> frozenset[str]:
    """The phone numbers of :func:`read_terminal_list`."""
    return read_terminal_list(path).phones
