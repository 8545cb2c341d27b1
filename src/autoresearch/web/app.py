"""The dashboard's web app: its views, its static files, and who may see it. Every request needs
the token `autoresearch serve` printed (`?token=`, an `Authorization: Bearer` header, or the cookie
that the address with `?token=` sets), on every address: on the loopback too, where any local
process could otherwise read it (an agent's `curl` sees every holdout score). Bound to the loopback
it also answers only requests addressed to it (a Host check against DNS rebinding)."""

from __future__ import annotations

import hmac
import secrets
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles

from autoresearch.store.store import StoreError
from autoresearch.web import api, compare, data, pages

# one router per concern; a new view adds its own here
VIEWS = [api.router, pages.router, compare.router]
LOOPBACK = ("127.0.0.1", "localhost", "::1")
COOKIE = "autoresearch_token"
REFUSED = "a token is required: open the address `autoresearch serve` printed (with ?token=)"


def new_token() -> str:
    return secrets.token_urlsafe(24)


def host_name(header: str) -> str:
    """The name in a Host header, without its port: `[::1]:8765` -> `::1`."""
    header = header.strip().lower()
    if header.startswith("["):  # an IPv6 address, with or without a port
        name, bracket, port = header[1:].partition("]")
        if bracket and (port == "" or port.startswith(":") and port[1:].isdigit()):
            return name
        return ""  # malformed
    if header.count(":") == 1:  # a name or an IPv4 address, with a port
        return header.split(":")[0]
    return header  # without a port (or an IPv6 address without brackets)


def create_app(workspace: Path, token: str, local: bool = True) -> FastAPI:
    """Every request must carry token; local (bound to the loopback): and be addressed to it."""
    app = FastAPI(title="autoresearch", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.workspace = workspace
    for router in VIEWS:
        app.include_router(router)
    app.mount("/static", StaticFiles(packages=[("autoresearch.web", "static")]), name="static")

    @app.exception_handler(data.NotFound)
    async def not_found(request: Request, err: data.NotFound):
        return JSONResponse({"detail": str(err)}, status_code=404)

    @app.exception_handler(StoreError)
    async def unreadable(request: Request, err: StoreError):
        return JSONResponse({"detail": str(err)}, status_code=503)

    @app.middleware("http")
    async def guard(request: Request, call_next):
        if local and host_name(request.headers.get("host", "")) not in LOOPBACK:
            return PlainTextResponse("Invalid host header", status_code=400)
        cookie = cookie_name(request)
        given = request.query_params.get("token") or request.cookies.get(cookie) or ""
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            given = header[7:].strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            return JSONResponse({"detail": REFUSED}, status_code=403)
        response = await call_next(request)
        if request.query_params.get("token"):  # the page's own requests carry the cookie
            response.set_cookie(cookie, token, httponly=True, samesite="strict")
        return response

    return app


def cookie_name(request: Request) -> str:
    """One per port: cookies do not tell ports apart, and each dashboard has its own token."""
    port = request.url.port
    return f"{COOKIE}_{port}" if port else COOKIE
