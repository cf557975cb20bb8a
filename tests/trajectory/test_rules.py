"""The cleaning rules' thresholds (trajectory.rules): defaults, the noisy-road set, the kernels' params order."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from truckcarbon.trajectory._attribute import N_PARAMS
from truckcarbon.trajectory._flag import flag_kernel
from truckcarbon.trajectory._robust import N_PARAMS as N_ROBUST_PARAMS
from truckcarbon.trajectory.rules import NOISY_ROAD_RULES, CleaningRules, attribute_params, robust_params


def test_rules_defaults_are_those_the_kernels_and_the_config_example_state():
    """attribute_params has a place per kernel parameter; flag_kernel's defaults (the benchmark calls it without
    the rule 6 arguments) and the [rules] of the configuration example are CleaningRules' defaults."""
    import dataclasses
    import inspect
    import tomllib

    import truckcarbon.pipeline.config as config_module

    rules = CleaningRules()
    assert attribute_params(rules).shape == (N_PARAMS,)
    assert attribute_params(rules)[-2] == rules.max_bridge_s == 4 * 3600
    assert attribute_params(rules)[-1] == rules.idle_stop_s == 900.0
    defaults = inspect.signature(flag_kernel.py_func).parameters
    assert defaults["max_vehicle_kmh"].default == rules.max_vehicle_kmh == 130.0
    assert defaults["sustained_s"].default == rules.sustained_s == 60.0
    doc = config_module.__doc__ or ""
    section = doc[doc.index("[rules]") :].split("\n\n")[0]
    assert tomllib.loads(section)["rules"] == dataclasses.asdict(rules)


def test_noisy_road_rules_turn_rule_7_on_and_change_nothing_else():
    assert NOISY_ROAD_RULES.noise_rules and not CleaningRules().noise_rules
    assert dataclasses.replace(NOISY_ROAD_RULES, noise_rules=False) == CleaningRules()
    with pytest.raises(dataclasses.FrozenInstanceError):
        NOISY_ROAD_RULES.noise_rules = False  # type: ignore[misc]


def test_robust_params_in_the_order_rule_7_reads_them():
    rules = CleaningRules(
        band_floor_m=11.0, band_sigmas=2.5, stop_kmh=3.0, default_noise_m=7.0, use_speed=False, turn_correction=True
    )
    p = robust_params(rules)
    assert p.dtype == np.float64 and p.shape == (N_ROBUST_PARAMS,)
    assert p.tolist() == [11.0, 2.5, 3.0, 7.0, 0.0, 1.0, 1.0]
    flipped = dataclasses.replace(rules, use_speed=True, turn_correction=False, use_acc=False)
    assert robust_params(flipped)[4:].tolist() == [1.0, 0.0, 0.0]


def test_attribute_params_in_the_order_the_attribution_reads_them():
    rules = CleaningRules(
        drift_m=31.0, drift_kmh=4.0, gap_s=1000.0, max_speed_kmh=140.0, max_bridge_kmh=110.0, gap_circuity=1.1,
        refuel_l=6.0, max_fuel_l_per_km=1.2, odometer_after_s=160.0, max_bridge_s=7200.0,
        idle_stop_s=600.0,
    )  # fmt: skip
    p = attribute_params(rules)
    assert p.dtype == np.float64
    assert p.tolist() == [31.0, 4.0, 1000.0, 140.0, 110.0, 1.1, 6.0, 1.2, 160.0, 7200.0, 600.0]
    # Rule 7 replaces the drift rule: a negative drift threshold tells the attribution so; the rest unchanged.
    noisy = attribute_params(dataclasses.replace(rules, noise_rules=True))
    assert noisy[0] == -1.0 and noisy[1:].tolist() == p[1:].tolist()
