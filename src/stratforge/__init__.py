"""stratforge: a research factory for systematic trading strategies."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("stratforge")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"

__all__ = ["__version__"]
