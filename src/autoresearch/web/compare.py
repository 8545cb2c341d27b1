"""The comparison view: runs side by side (the table of `autoresearch compare`) and the overlay of
their best so far, against the iteration and the agent cost; the page follows runs in progress."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse

from autoresearch.store.store import list_runs
from autoresearch.views.compare import CompareRefused, compare
from autoresearch.views.compare_table import grid
from autoresearch.web.api import _json
from autoresearch.web.data import NotFound
from autoresearch.web.pages import page

router = APIRouter()


@router.get("/api/compare")
def comparison(request: Request, run: Annotated[list[str], Query()] = ()):
    """`autoresearch compare --json` of the runs named (?run=A&run=B; default every run), with
    the table as the terminal shows it; runs that cannot be compared: 409 and the one line."""
    workspace = request.app.state.workspace
    known = {path.name for path in list_runs(workspace)}
    unknown = [run_id for run_id in run if run_id not in known]
    if unknown:
        raise NotFound(f"no run '{unknown[0]}' in {workspace}")
    try:
        cmp = compare(workspace, list(run) or None)
    except CompareRefused as err:
        raise HTTPException(status_code=409, detail=str(err)) from None
    return _json({**cmp.to_json(), "has_costs": cmp.has_costs, "table": asdict(grid(cmp))})


@router.get("/compare", response_class=HTMLResponse)
def compare_page():
    return page("compare.html")  # the page reads the runs from the address (?run=A&run=B)
