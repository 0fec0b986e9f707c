"""The read side: a fold of the event log into incidents, drafts and pages.

Rooms, in the order the data flows (imports point one way: ``web → drafts → engine``,
``runtime → engine``, ``reactions → engine``; none imports ``hindsight``):

- ``engine/``: the pure fold (facts, subject and incident state, placement, retention,
  timeline rendering, services, action items). No I/O, no clock.
- ``runtime/``: the projector process (leader lock, checkpoints, wake-ups), read-model
  writes and ``hindsight rebuild``.
- ``drafts/``: the postmortem draft: analysis, model, Markdown and JSON, wording.
- ``web/``: read routes, the dashboard, incident and setup pages, the status page, and
  their static files.
- ``reactions/``: what reacts to the read models and calls out (the action-item
  notifier); it appends what it did, and nothing else imports it.
"""
