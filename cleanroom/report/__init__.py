"""The report: build its figures from a collaboration, render them as one HTML file."""

from ._build import build_report
from ._render import render_report, write_report

__all__ = ["build_report", "render_report", "write_report"]
