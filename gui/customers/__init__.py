"""The Customers tab: usage, allocation timeline, capacity, audit, allocation dialogs and their worker."""
