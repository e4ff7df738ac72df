"""The application: start-up, single instance, theme, settings, tray, and the composition root
that builds the window and its consoles."""
