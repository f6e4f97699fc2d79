"""Package data: the web console's page template."""
