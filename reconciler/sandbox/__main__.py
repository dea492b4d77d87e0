"""`python -m reconciler.sandbox serve|reset|info ...`: the `sandbox` click group on its own.

A launcher, not part of the sandbox: its click group lives with the rest of the CLI
(``reconciler.cli.sandbox_cmds``); the import contract allows this one import (``.importlinter``).
"""

from reconciler.cli.sandbox_cmds import sandbox

if __name__ == "__main__":
    sandbox(prog_name="python -m reconciler.sandbox")
