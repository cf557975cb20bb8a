"""Tests of truckcarbon.emissions.

A package, so that its test_method.py may share its name with tests/pipeline/test_method.py.
"""
