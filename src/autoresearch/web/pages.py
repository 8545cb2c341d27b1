"""The HTML views: the runs list and a run's page. The pages are static files that draw
themselves from the JSON API, so what they show is what /api/ says."""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter()
STATIC = files("autoresearch.web") / "static"


def page(name: str) -> HTMLResponse:
    return HTMLResponse(STATIC.joinpath(name).read_text(encoding="utf-8"))


@router.get("/", response_class=HTMLResponse)
def runs_page():
    return page("runs.html")


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(run_id: str):
    return page("run.html")  # the page reads its run id from the address
