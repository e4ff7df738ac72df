"""Lifecycle views: the RMA report drawn as a PDF."""
