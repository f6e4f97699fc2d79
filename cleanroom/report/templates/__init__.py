"""Package data: the HTML report template (shipped with the wheel)."""
