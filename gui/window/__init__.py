"""The main window and what frames it: menus, KPI strip, replay bar, the operations tabs, dialogs."""
