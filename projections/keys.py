"""Typed application keys of the read side."""

from __future__ import annotations

from aiohttp import web

from projections.projector import Projector

PROJECTOR = web.AppKey("projector", Projector)
