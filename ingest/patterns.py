"""Text both sides of Hindsight recognise the same way: adapters (reading payloads) and
the read side (writing drafts and public summaries)."""

from __future__ import annotations

import re

# A full Git commit id (SHA-1): shown as its first seven characters, as Git does.
FULL_SHA = re.compile(r"[0-9a-f]{40}")
# An e-mail address: a person, never kept in a signal nor shown on the status page.
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


def short_revision(ref: str) -> str:
    """A full commit id as Git shows it (seven characters); any other ref unchanged."""
    return ref[:7] if FULL_SHA.fullmatch(ref) else ref
