"""The JSON API under /api/: the runs, a run (exactly `status --json`), an iteration, the live
phase, and a stream of live updates (server-sent events)."""

from __future__ import annotations

import asyncio
import json

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from autoresearch.core.safe_text import strict_json
from autoresearch.web import data

router = APIRouter(prefix="/api")
POLL_SECS = 1.0  # how often the event stream looks at the store
KEEPALIVE_SECS = 15.0


def _json(value) -> Response:
    """Strict JSON, as `status --json` prints it."""
    return Response(strict_json(value), media_type="application/json")


@router.get("/runs")
def runs(request: Request):
    return _json(data.runs(request.app.state.workspace))


@router.get("/runs/{run_id}")
def run(run_id: str, request: Request):
    return _json(data.run(request.app.state.workspace, run_id))


@router.get("/runs/{run_id}/iterations/{n}")
def iteration(run_id: str, n: int, request: Request):
    return _json(data.iteration(request.app.state.workspace, run_id, n))


@router.get("/runs/{run_id}/live")
def live(run_id: str, request: Request):
    return _json(data.live(request.app.state.workspace, run_id))


@router.get("/runs/{run_id}/events")
async def events(run_id: str, request: Request):
    """An event whenever the live view changes (a phase, a record, a log line, the state)."""
    workspace = request.app.state.workspace
    first = await run_in_threadpool(data.live, workspace, run_id)  # a missing run: 404 now

    async def stream():
        sent, quiet, now = None, 0.0, first
        while not await request.is_disconnected():
            key = json.dumps({**now, "live": {**(now["live"] or {}), "elapsed_secs": 0}})
            if key != sent:
                sent, quiet = key, 0.0
                yield f"data: {strict_json(now)}\n\n"
            elif quiet >= KEEPALIVE_SECS:
                quiet = 0.0
                yield ": keepalive\n\n"
            await asyncio.sleep(POLL_SECS)
            quiet += POLL_SECS
            try:
                now = await run_in_threadpool(data.live, workspace, run_id)
            except data.NotFound:
                return

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)
