"""truckcarbon: heavy-truck telematics to an auditable city-by-month CO2 inventory for China."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("truckcarbon")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"

__all__ = ["__version__"]
