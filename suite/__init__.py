"""The release gate for synthetic health data: fit generators, attack and measure, judge."""

__version__ = "0.1.0"
