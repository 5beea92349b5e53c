"""Noark 5: the archival extract (avleveringspakke), its validation, and the public journal.

- `extract.export_case` writes the extract of one closed case.
- `validate.validate_extract` checks an extract against the official schemas shipped in `schemas/`.
- `journal` renders the public journal (offentlig journal) with private persons screened.
"""
