"""The projector process (leader lock, checkpoints, wake-ups), read-model writes and
``hindsight rebuild``: the engine run against the event store."""
