"""autoresearch: an orchestrator for overnight ML research by an AI agent."""

__version__ = "0.1.0"


def open_run(path, run: str | None = None):
    """A run of a workspace folder or a bundle file, to analyse (see autoresearch.api.Run)."""
    from autoresearch.api import open_run as opened

    return opened(path, run)
