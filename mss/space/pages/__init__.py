"""The space's routes, one module per part; `routers()` lists them for `app.py`."""

from __future__ import annotations

from fastapi import APIRouter

from mss.space.pages import auth, choose, devices, documents, history, home, messages, settings


def routers() -> list[APIRouter]:
    return [
        home.router,
        auth.router,
        devices.router,
        choose.router,
        documents.router,
        history.router,
        settings.router,
        messages.router,
    ]
