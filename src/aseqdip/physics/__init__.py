"""Operators and operator defaults that deepinv does not provide."""

from .defaults import default_network, first_estimate

__all__ = ["default_network", "first_estimate"]
