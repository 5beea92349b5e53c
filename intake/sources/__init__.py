"""Mail sources: IMAP and folders (Maildir, mbox, .eml)."""
