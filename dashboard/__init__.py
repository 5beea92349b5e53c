"""Staff web app: monitor the intake, resolve doubtful mail, summarise the consultation."""
