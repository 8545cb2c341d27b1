"""autoresearch: an orchestrator for overnight ML research by an AI agent."""

__version__ = "0.1.0"
