"""What people and programs read about runs: the status snapshot (status --json), the terminal
views, report.md, compare and export."""
