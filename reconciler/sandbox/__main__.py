"""`python -m reconciler.sandbox serve|reset|info ...`: the `sandbox` click group on its own."""

from .cli import sandbox

if __name__ == "__main__":
    sandbox(prog_name="python -m reconciler.sandbox")
