"""The gateway's settings: defaults and the load-sensing choice."""

from __future__ import annotations

from pathlib import Path

import pytest

from truckcarbon.jt808.config import GatewayConfig
from truckcarbon.jt808.validation import Limits


def test_defaults_and_the_load_sensing_choice() -> None:
    config = GatewayConfig()
    assert (config.host, config.port, config.data, config.load_sensing) == ("127.0.0.1", 7808, Path("gateway_data"),
                                                                            "listed")  # fmt: skip
    assert config.limits == Limits() and config.metrics_port is None and config.known_vehicles is None
    for choice in ("listed", "all", "none"):
        assert GatewayConfig(load_sensing=choice).load_sensing == choice
    with pytest.raises(ValueError, match="use one of listed, all, none"):
        GatewayConfig(load_sensing="some")
