"""SQL migrations ``NNNN_name.sql``: the only place DDL lives. Applied in order by
``hindsight.migrations``."""

from pathlib import Path

DIRECTORY = Path(__file__).parent
