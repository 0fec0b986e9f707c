"""The read side's typed application key shared by its rooms: the engine configuration,
in every process (the projector folds with it; HTTP workers replay "as of" answers with
it)."""

from __future__ import annotations

from aiohttp import web

from projections.engine.fold import EngineConfig

ENGINE_CONFIG = web.AppKey("engine_config", EngineConfig)
