"""postmottak: consultation responses from a public body's official mailbox into a Noark 5 case database.

The layers are sub-packages: `postmottak.parsers` (pure functions), `postmottak.casefile` (the case database, the
only SQL), `postmottak.intake` (the worker and the CLI, the only network I/O), `postmottak.dashboard` (the staff
web app) and `postmottak.config` (settings). `postmottak.bootstrap` wires them together.
"""

__version__ = "0.2.0"
