"""Novel Task Manager: manuscript analysis in a durable database-backed queue."""

__version__ = "0.1.0"
