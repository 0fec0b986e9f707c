"""Typed application keys of the read side."""

from __future__ import annotations

from aiohttp import web

from projections.engine.fold import EngineConfig
from projections.runtime.projector import Projector

PROJECTOR = web.AppKey("projector", Projector)
# The engine configuration, in every process that serves HTTP (the as_of replay folds
# with it); the projector itself runs in a process of its own under `serve`.
ENGINE_CONFIG = web.AppKey("engine_config", EngineConfig)
