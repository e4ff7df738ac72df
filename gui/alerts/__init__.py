"""The Alerts tab, its worker, dialogs and models."""
