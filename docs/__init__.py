"""Documentation sources and the gallery generator (``python -m docs.gallery``)."""
