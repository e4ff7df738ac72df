"""Background work for the GUI thread: the one thread-to-GUI bridge, the store worker base, the history loader and recorder."""
