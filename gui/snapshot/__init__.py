"""File → Export snapshot: PNG/PDF/CSV/JSON of the console as it is now."""
