"""The report: build its figures from a collaboration, render them as one HTML file."""

from ._build import build_report, describe_request
from ._render import render_report, report_css, write_report

__all__ = ["build_report", "describe_request", "render_report", "report_css", "write_report"]
