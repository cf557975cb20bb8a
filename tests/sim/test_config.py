"""Simulator configurations: month ranges, validation, the channels left out, presets; sim's errors."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from dataclasses import asdict, replace

import pytest

import truckcarbon.sim
from truckcarbon.core.errors import InputError, TruckcarbonError
from truckcarbon.sim.config import PRESETS, SimConfig, preset
from truckcarbon.sim.defects import DefectRates


def test_months_are_the_inclusive_range():
    config = SimConfig(start_month="2021-11", end_month="2022-02")
    assert config.months() == [2021 * 12 + 10, 2021 * 12 + 11, 2022 * 12, 2022 * 12 + 1]
    assert SimConfig(start_month="2020-05", end_month="2020-05").months() == [2020 * 12 + 4]
    with pytest.raises(InputError, match="empty"):
        SimConfig(start_month="2020-05", end_month="2020-01").months()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"trucks": 0}, "positive number of trucks"),
        ({"interval_s": 0}, "--interval-s"),
        ({"interval_s": 600, "parked_interval_s": 300}, "parked interval"),
        ({"start_month": "2019-13"}, "unknown month"),
        ({"geometry": "curvy"}, "straight, road"),
        ({"id_format": "{:08d}{}"}, "not a pattern of one number"),
        ({"id_format": "0139"}, "same id"),
        ({"defects": DefectRates(jump_rate=0.5)}, "jump_rate=0.5 must be between 0 and 0.2"),
        ({"defects": DefectRates(gps_noise_m=-1.0)}, "gps_noise_m"),
    ],
)
def test_validation_names_the_unusable_field(changes, message):
    with pytest.raises(InputError, match=message):
        replace(SimConfig(), **changes).validate()


def test_valid_configurations_pass():
    for config in (SimConfig(), *PRESETS.values(), SimConfig(id_format="0139{:08d}", geometry="road")):
        config.validate()


def test_channels_left_out():
    assert SimConfig().left_out_channels() == ()
    config = SimConfig(load_channel=False, fuel_channel=False)
    assert config.left_out_channels() == ("load_state", "fuel_level_l")
    assert SimConfig(odometer_channel=False).left_out_channels() == ("odometer_km",)


def test_a_preset_round_trips_and_takes_overrides():
    assert preset("demo") == PRESETS["demo"]
    demo = preset("demo")
    assert (demo.trucks, demo.interval_s, demo.parked_interval_s) == (1000, 120, 1800)
    changed = preset("demo", trucks=5, seed=None, geometry="road")
    assert changed.trucks == 5 and changed.seed == demo.seed and changed.geometry == "road"
    assert replace(changed, trucks=1000, geometry="straight") == demo
    # A configuration written to a manifest (asdict) rebuilds the same configuration.
    d = asdict(PRESETS["bench"])
    assert SimConfig(**{**d, "defects": DefectRates(**d["defects"])}) == PRESETS["bench"]
    assert hash(preset("bench")) == hash(PRESETS["bench"])  # processes key their state by it
    with pytest.raises(InputError, match="unknown preset 'small'; choose one of demo, bench"):
        preset("small")


def test_every_exception_class_of_the_simulator_derives_from_the_package_error():
    classes = []
    for info in pkgutil.iter_modules(truckcarbon.sim.__path__):
        module = importlib.import_module(f"truckcarbon.sim.{info.name}")
        classes += [
            c
            for _, c in inspect.getmembers(module, inspect.isclass)
            if issubclass(c, BaseException) and c.__module__ == module.__name__
        ]
    assert all(issubclass(c, TruckcarbonError) for c in classes), classes
