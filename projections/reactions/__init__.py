"""What reacts to the read models and calls out (the action-item notifier). It appends
what it did to the log; nothing else imports it."""
