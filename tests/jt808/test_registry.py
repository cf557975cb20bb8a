"""The registry: bindings one to one, codes stored hashed, allow-lists, operator releases, the lists it reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from truckcarbon.core.errors import InputError
from truckcarbon.jt808.messages import RegisterResult, Registration
from truckcarbon.jt808.registry import (
    Registry,
    known_terminals,
    known_vehicles,
    queue_release,
    read_bindings,
)

from .gwkit import PHONE, PLATE


def test_registry_without_lists_binds_one_vehicle_to_one_terminal(tmp_path: Path) -> None:
    path = tmp_path / "terminals.json"
    registry = Registry(path)
    result, code, entry = registry.register("000000000001", Registration(0, 0, "M", "X", "5", 1, "鲁Q00001"))
    assert result == RegisterResult.OK and entry is not None and entry["vehicle_id"] == 5 and len(code) == 16
    # Terminal id 5 is vehicle 5, which terminal 1 has: vehicle already registered.
    result, code, entry = registry.register("000000000002", Registration(0, 0, "M", "X", "5", 1, "鲁Q00002"))
    assert (result, code, entry) == (RegisterResult.VEHICLE_REGISTERED, "", None)
    # Without a plate and with a terminal id that is not a number: the next free vehicle id.
    result, code, entry = registry.register("000000000002", Registration(0, 0, "M", "X", "ABC", 1, ""))
    assert result == RegisterResult.OK and entry is not None and entry["vehicle_id"] == 6
    # The bindings survive a restart; the same registration is refused (its code is never sent again) ...
    again = Registry(path)
    assert again.register("000000000002", Registration(0, 0, "M", "X", "ABC", 1, "")) == (
        RegisterResult.TERMINAL_REGISTERED, "", None,
    )  # fmt: skip
    assert again.verify(again.get("000000000002"), code.encode())  # type: ignore[arg-type]
    # ... unless it comes from the terminal's authenticated session: a new code, the old one void.
    result, new, entry2 = again.register("000000000002", Registration(0, 0, "M", "X", "ABC", 1, ""), True)
    assert result == RegisterResult.OK and new != code and entry2 is not None and entry2["vehicle_id"] == 6
    assert again.verify(entry2, new.encode()) and not again.verify(entry2, code.encode())
    assert again.register("000000000002", Registration(0, 0, "M", "X", "ABD", 1, ""), True)[0] == (
        RegisterResult.TERMINAL_REGISTERED
    )
    # No code is stored in the clear.
    stored = path.read_text(encoding="utf-8") + path.with_suffix(".jsonl").read_text(encoding="utf-8")
    assert code not in stored and new not in stored


def test_known_vehicle_and_terminal_lists_are_read_with_clear_errors(tmp_path: Path) -> None:

    good = tmp_path / "vehicles.csv"
    good.write_text("vehicle_id,plate\n7,京A00007\n8,鲁Q00008\n", encoding="utf-8")
    assert known_vehicles(good) == {"京A00007": 7, "鲁Q00008": 8}
    bad = tmp_path / "bad.csv"
    bad.write_text("vehicle_id,plat\n7,京A00007\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"missing column.*plate"):
        known_vehicles(bad)
    twice = tmp_path / "twice.csv"
    twice.write_text("vehicle_id,plate\n7,京A00007\n9,京A00007\n", encoding="utf-8")
    with pytest.raises(InputError, match="row 2: plate 京A00007 is listed for vehicles 7 and 9"):
        known_vehicles(twice)
    with pytest.raises(InputError, match="no such file"):
        known_vehicles(tmp_path / "none.parquet")
    phones = tmp_path / "terminals.txt"
    phones.write_text("# fleet A\n013800000007\n\n013800000008  # spare\n", encoding="utf-8")
    assert known_terminals(phones) == frozenset({"013800000007", "013800000008"})
    phones.write_text("013800000007\n01380000x\n", encoding="utf-8")
    with pytest.raises(InputError, match="line 2"):
        known_terminals(phones)


def test_codes_are_stored_hashed_and_plain_ones_of_older_versions_are_hashed_on_start(tmp_path: Path) -> None:
    path = tmp_path / "terminals.json"
    path.write_text(json.dumps({PHONE: {"vehicle_id": 7, "plate": PLATE, "terminal_id": "7",
                                         "auth_code": "0123456789abcdef"}}), encoding="utf-8")  # fmt: skip
    registry = Registry(path)
    assert "0123456789abcdef" not in path.read_text(encoding="utf-8")
    entry = registry.get("13800000007")  # compared without the BCD zero padding
    assert entry is not None and entry["phone"] == PHONE
    assert registry.verify(entry, b"0123456789abcdef") and not registry.verify(entry, b"0123456789abcdeF")
    assert not registry.verify(entry, bytes.fromhex("b9fabcd2"))


def test_a_binding_off_the_allow_lists_no_longer_authenticates(tmp_path: Path) -> None:
    path = tmp_path / "terminals.json"
    code = Registry(path).register(PHONE, Registration(0, 0, "M", "X", "7", 1, PLATE))[1].encode()
    assert Registry(path).authenticate("13800000007", code) is not None  # no lists: allowed
    assert Registry(path).authenticate(PHONE, code[:-1]) is None  # a wrong code
    assert Registry(path, known_terminals=frozenset({"13800000007"})).authenticate(PHONE, code) is not None
    assert Registry(path, known_terminals=frozenset({"13800000008"})).authenticate(PHONE, code) is None
    assert Registry(path, known_vehicles={PLATE: 7}).authenticate(PHONE, code) is not None
    assert Registry(path, known_vehicles={PLATE: 8}).authenticate(PHONE, code) is None  # the plate is another's now
    assert Registry(path, known_vehicles={"京B00001": 7}).authenticate(PHONE, code) is None


def test_releases_queued_by_the_operator_are_listed_pending_then_applied(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no gateway data folder"):
        queue_release(tmp_path, [PHONE])
    registry = Registry(tmp_path / "terminals.json")
    registry.register(PHONE, Registration(0, 0, "M", "X", "7", 1, PLATE))
    registry.register("013800000008", Registration(0, 0, "M", "X", "8", 1, "京A00008"))
    with pytest.raises(InputError, match="12ab"):
        queue_release(tmp_path, ["12ab"])
    queue_release(tmp_path, ["13800000008", "013900000000"])  # a phone not bound is released as nothing
    listed = read_bindings(tmp_path)
    assert [(b["phone"], b["vehicle_id"], b["release_pending"]) for b in listed] == [
        (PHONE, 7, False), ("013800000008", 8, True),
    ]  # fmt: skip
    assert all("auth_hash" not in b and "salt" not in b for b in listed)
    (tmp_path / "operator" / "release-0-torn.json").write_text('{"phones": [', encoding="utf-8")
    done = registry.apply_operator_requests(tmp_path / "operator")
    assert [(phone, entry is not None) for phone, entry in done] == [("13800000008", True), ("013900000000", False)]
    assert [p.name for p in (tmp_path / "operator").iterdir()] == ["release-0-torn.json"]  # not ours: left alone
    assert registry.get("013800000008") is None and registry.get(PHONE) is not None
    # The vehicle and the plate are free again: another terminal may take them.
    again = registry.register("013800000009", Registration(0, 0, "M", "X", "8", 1, "京A00008"))
    assert again[0] == RegisterResult.OK and again[2] is not None and again[2]["vehicle_id"] == 8


def test_the_journal_is_folded_into_the_snapshot_and_a_torn_last_line_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "terminals.json"
    registry = Registry(path)
    registry.register(PHONE, Registration(0, 0, "M", "X", "7", 1, PLATE))
    with open(path.with_suffix(".jsonl"), "a", encoding="utf-8") as fh:
        fh.write('{"phone": "013800000008", "vehicle_id": 8, "pla')  # a crash while writing the line
    reopened = Registry(path)
    assert list(reopened.terminals) == ["13800000007"] and not path.with_suffix(".jsonl").exists()
    assert json.loads(path.read_text(encoding="utf-8"))[PHONE]["vehicle_id"] == 7
