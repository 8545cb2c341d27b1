"""`autoresearch serve`: the dashboard of a workspace's runs, read-only, while they go on."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated

import typer

from autoresearch.cli.common import Workspace, err, fail, reading


def serve(
    directory: Workspace = Path("."),
    host: Annotated[
        str,
        typer.Option(
            help="Address to listen on (any other than the loopback: see docs/dashboard.md)."
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free one).")] = 8765,
) -> None:
    """A web dashboard of the runs, read-only.

    A progress chart, the iterations, their diffs and logs, and the live phase."""
    import uvicorn

    from autoresearch.web.app import LOOPBACK, create_app, new_token

    given, directory = directory, reading(directory)
    token = new_token()  # on the loopback too: a local process (an agent) must not read it
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)  # from now on a request waits for the server instead of failing
    except (OSError, OverflowError) as e:
        raise fail(f"cannot listen on {host}:{port}: {getattr(e, 'strerror', None) or e}") from None
    shown = reachable(host)
    shown = f"[{shown}]" if ":" in shown else shown
    url = f"http://{shown}:{sock.getsockname()[1]}/?token={token}"
    err.print(f"dashboard of {given}: {url}")
    err.print("every request needs that token (open the address once: the page keeps it)")
    config = uvicorn.Config(
        create_app(directory.absolute(), token, local=host in LOOPBACK),
        log_level="warning",
        timeout_graceful_shutdown=2,  # open event streams do not hold up Ctrl-C
    )
    uvicorn.Server(config).run(sockets=[sock])


def reachable(host: str) -> str:
    """An address another machine can open for a wildcard one (0.0.0.0, ::): this machine's
    first address off the loopback (the one its default route leaves from), else its name."""
    if host not in ("0.0.0.0", "::", ""):
        return host
    family, probe = (
        (socket.AF_INET6, "2001:db8::1") if host == "::" else (socket.AF_INET, "192.0.2.1")
    )
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as udp:
            udp.connect((probe, 9))  # a documentation address: nothing is sent
            address = udp.getsockname()[0]
    except OSError:
        return socket.gethostname()
    return socket.gethostname() if address.startswith(("127.", "::1")) else address
