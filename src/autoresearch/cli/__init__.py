"""The `autoresearch` command line: the app (cli.app:main) and one module per larger command."""
