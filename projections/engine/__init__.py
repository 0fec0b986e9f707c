"""The pure fold: facts, subject and incident state, placement, retention, timeline
rendering, services and action items. No I/O and no clock: the same log gives the same
incidents, live or rebuilt."""
