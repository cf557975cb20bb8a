"""``python -m truckcarbon`` runs the command-line interface."""

from truckcarbon.cli.main import app

app()
