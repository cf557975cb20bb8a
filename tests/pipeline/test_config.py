"""Run configuration from TOML: unknown keys and bad values refused with the key named, known ones read."""

from __future__ import annotations

from pathlib import Path

import pytest

from truckcarbon.core.errors import InputError
from truckcarbon.pipeline import PipelineConfig


def test_config_file_errors(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[rules]\nmax_sped_kmh = 100\n", encoding="utf-8")
    with pytest.raises(InputError, match="max_sped_kmh"):
        PipelineConfig.from_file(cfg)
    cfg.write_text('crs = "utm"\n', encoding="utf-8")
    with pytest.raises(InputError, match="crs"):
        PipelineConfig.from_file(cfg)
    cfg.write_text("[rules]\nmax_speed_kmh = 120\n[emissions]\nemission_factor = 'diesel_wtw_defra_2025'\n")
    config = PipelineConfig.from_file(cfg)
    assert config.rules.max_speed_kmh == 120 and config.emissions.emission_factor == "diesel_wtw_defra_2025"
    with pytest.raises(InputError, match="does not exist"):
        PipelineConfig.from_file(tmp_path / "absent.toml")
    cfg.write_text("threads = [", encoding="utf-8")
    with pytest.raises(InputError, match="not valid TOML"):
        PipelineConfig.from_file(cfg)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"threads": 0}, "threads must be at least 1"),
        ({"rows_per_partition": 999}, "rows_per_partition must be at least 1000"),
        ({"spill_compression": "gzip"}, "spill_compression must be one of none, lz4, zstd"),
        ({"context_hours": 24 * 28}, "context_hours must be between 0 and 648"),
        ({"max_quarantine_share": 1.5}, "max_quarantine_share"),
        ({"encoding": "latin-1"}, "encoding must be one of"),
        ({"rules": []}, r"\[rules\] must be a table"),
    ],
)
def test_bad_settings_are_refused_naming_the_setting(settings: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        PipelineConfig.from_dict(settings)


def test_a_column_mapping_is_split_between_the_tables_it_names() -> None:
    config = PipelineConfig.from_dict(
        {"columns": {"车辆ID": "vehicle_id", "排放标准": "emission_standard", "经度": "lon"}}
    )
    assert config.columns_for("pings") == {"车辆ID": "vehicle_id", "经度": "lon"}
    assert config.columns_for("vehicles") == {"车辆ID": "vehicle_id", "排放标准": "emission_standard"}
    assert config.to_dict()["columns"] == config.columns
