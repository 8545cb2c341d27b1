"""What a run keeps on disk: its folder's names (layout), the SQLite store and its migrations, the
git history of its code, results.tsv, who owns it now, and the workspace copies it works in."""
