"""Node and GPU lifecycle: burn-in, production, draining, maintenance, repair, RMA, retired.

`states` says which states exist and which transitions a datacenter allows; `schema` stores the
transitions (append-only) with the book in the history database; `book.LifecycleBook` is the one
door for reading the current states and making validated, audited transitions.
"""
