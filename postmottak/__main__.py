"""`python -m postmottak` is the `postmottak` command."""

from postmottak.intake.cli import main

main()
