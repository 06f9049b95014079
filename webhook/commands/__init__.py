"""One module per `keyguard` sub-command; each exposes `register(subparsers)` and sets `func` to its runner."""
