"""Novalet: a compute cloud that speaks the OpenStack Compute API."""

__version__ = "0.1.0"
