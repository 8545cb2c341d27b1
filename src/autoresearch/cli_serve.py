"""`autoresearch serve`: the dashboard of a workspace's runs, read-only, while they go on."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated

import typer

from autoresearch.cli_common import Workspace, err, fail, reading


def serve(
    directory: Workspace = Path("."),
    host: Annotated[
        str, typer.Option(help="Address to listen on; any but the loopback needs the token.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free one).")] = 8765,
) -> None:
    """A web dashboard of the runs (progress chart, iterations, diffs, logs, the live phase)."""
    import uvicorn

    from autoresearch.web.app import LOOPBACK, create_app, new_token

    if not directory.exists():
        raise fail(f"{directory}: no such folder")
    given, directory = directory, reading(directory)
    token = None if host in LOOPBACK else new_token()
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)  # from now on a request waits for the server instead of failing
    except (OSError, OverflowError) as e:
        raise fail(f"cannot listen on {host}:{port}: {getattr(e, 'strerror', None) or e}") from None
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{sock.getsockname()[1]}/" + (f"?token={token}" if token else "")
    err.print(f"dashboard of {given}: {url}")
    if token:
        err.print("every request needs that token (open the address once: the page keeps it)")
    config = uvicorn.Config(
        create_app(directory.absolute(), token),
        log_level="warning",
        timeout_graceful_shutdown=2,  # open event streams do not hold up Ctrl-C
    )
    uvicorn.Server(config).run(sockets=[sock])
