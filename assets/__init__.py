"""Shipped data (print-defaults templates, example configs, the web UI), read via importlib.resources."""
