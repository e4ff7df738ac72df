"""Team mode (issue 17): the book shared by several consoles in one PostgreSQL database.

Qt-free. `connection` parses and opens `--team-db URL`; `schema` creates and migrates the tables,
with the rules (no GPU held twice, allocations inside their contract) enforced by the database.
"""
