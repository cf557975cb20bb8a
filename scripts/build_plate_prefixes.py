"""Regenerate ``src/truckcarbon/data/plate_prefixes.csv`` from ``scripts/plate_prefixes_source.txt``.

The source lists, per mainland prefecture-level unit, the plate-issuing-office
letters (发牌机关代号) of the GA 36-2018 plate series that its public-security
traffic administration issues. Units that issue no letters of their own (most of
Hainan's province-administered counties, Sansha, Xinjiang's Corps cities) carry
the prefix of the office that registers their vehicles; those rows have
``own_prefix`` false, so each prefix maps back to exactly one unit.

    python scripts/build_plate_prefixes.py
"""

from __future__ import annotations

import csv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "scripts" / "plate_prefixes_source.txt"
DATA = ROOT / "src" / "truckcarbon" / "data"
CITATION = "GA 36-2018 plate series, issuing-office letters (发牌机关代号) by prefecture-level unit"


def main() -> None:
    with (DATA / "cities.csv").open(encoding="utf-8") as f:
        units = {r["name_zh"]: r for r in csv.DictReader(f) if r["is_mainland"] == "True"}
    with (DATA / "provinces.csv").open(encoding="utf-8") as f:
        abbr_of = {r["province_adcode"]: r["abbreviation"] for r in csv.DictReader(f)}
    rows = []
    for line in SOURCE.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        head, name = (part.strip() for part in line.split(":"))
        abbr, letters = head.split()
        own = not letters.endswith("*")
        unit = units[name]
        if abbr_of[unit["province_adcode"]] != abbr:
            raise SystemExit(f"{line!r}: {name} is not in the province of {abbr}")
        for letter in letters.rstrip("*"):
            rows.append(
                {
                    "plate_prefix": abbr + letter,
                    "city_adcode": unit["city_adcode"],
                    "city_name_zh": name,
                    "own_prefix": own,
                    "source": CITATION,
                }
            )
    owned = [r["plate_prefix"] for r in rows if r["own_prefix"]]
    if len(owned) != len(set(owned)):
        raise SystemExit("a prefix is owned by two units")
    missing = set(units) - {r["city_name_zh"] for r in rows}
    if missing:
        raise SystemExit(f"units without a plate prefix: {sorted(missing)}")
    rows.sort(key=lambda r: (r["city_adcode"], not r["own_prefix"], r["plate_prefix"]))
    with (DATA / "plate_prefixes.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {len(rows)} prefixes for {len({r['city_adcode'] for r in rows})} units")


if __name__ == "__main__":
    main()
