"""Fixtures of the geo tests: the hand-built two-unit index of :mod:`geokit`."""

from __future__ import annotations

import pytest

from .geokit import ToyIndex, toy_index


@pytest.fixture
def toy() -> ToyIndex:
    return toy_index()
