"""Benchmarks of the service: scripts, not tests. ``python -m bench`` runs ``bench/peers.py``."""
