"""reconciler: a vcita business's catalog packages and client packages, managed as code."""

__version__ = "0.1.0"
