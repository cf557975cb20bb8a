"""Command-line interface (Typer): thin wrappers around the Python API."""
