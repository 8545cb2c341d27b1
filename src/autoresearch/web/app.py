"""The dashboard's web app: its views, its static files, and who may see it. Bound to the loopback
address it answers local requests only (a Host check against DNS rebinding); on another address
every request needs the token `autoresearch serve` printed (a header, `?token=`, or the cookie
that the first page sets)."""

from __future__ import annotations

import hmac
import secrets
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.middleware.trustedhost import TrustedHostMiddleware

from autoresearch.store import StoreError
from autoresearch.web import api, compare, data, pages

# one router per concern; a new view adds its own here
VIEWS = [api.router, pages.router, compare.router]
LOOPBACK = ("127.0.0.1", "localhost", "::1")
COOKIE = "autoresearch_token"


def new_token() -> str:
    return secrets.token_urlsafe(24)


def create_app(workspace: Path, token: str | None = None) -> FastAPI:
    """token None: loopback only; else every request must carry it."""
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

    if token is None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(LOOPBACK))
    else:

        @app.middleware("http")
        async def require_token(request: Request, call_next):
            given = request.query_params.get("token") or request.cookies.get(COOKIE) or ""
            header = request.headers.get("authorization", "")
            if header.lower().startswith("bearer "):
                given = header[7:].strip()
            if not hmac.compare_digest(given.encode(), token.encode()):
                return JSONResponse(
                    {
                        "detail": "a token is required: open the address `autoresearch serve` printed"
                    },
                    status_code=401,
                )
            response = await call_next(request)
            if request.query_params.get("token"):  # the page's own requests carry the cookie
                response.set_cookie(COOKIE, token, httponly=True, samesite="strict")
            return response

    return app
