"""sep-example: a template for sepframework plugins."""

from sep_example.bandpass import BandPassSeparator

__all__ = ["BandPassSeparator"]
