"""One business opened for a run: its target, its state store (the backend its configuration
chooses) and how to open its client.

Every command that reads or changes a business (plan, apply, drift, import, export) and each
business of a fleet run (``--all``) opens it here, so the state backend is chosen and the client's
limits and transport are set in one place.  Opening reads nothing remote and takes no lock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reconciler.remote.client import EmbeddedTransport, VcitaClient
    from reconciler.remote.target import Target
    from reconciler.state.backends.config import StateConfig


@dataclass(frozen=True)
class OpenBusiness:
    """A business opened for a run (nothing read yet: ``store.load()`` and ``client()`` do that)."""

    target: Target
    #: a :class:`reconciler.state.store.StateStore`, or a backend's store with the same interface
    store: Any
    concurrency: int | None = None
    rate: float | None = None
    #: the transport factory of an embedded target (the CLI's ``reconciler.cli.embedded``)
    embedded: EmbeddedTransport | None = None

    def client(self) -> VcitaClient:
        """A client of this business's target (use it as ``async with``)."""
        return open_client(self.target, concurrency=self.concurrency, rate=self.rate, embedded=self.embedded)


def state_config(paths: Sequence[str | Path] | None, *, target_name: str | None, backend: str | None,
                 dsn_env: str | None, cwd: Path) -> StateConfig:
    """Where the state of the business whose manifests are ``paths`` is kept: the flags, then
    target.toml of the manifest folder, the target's table and the top level of reconciler.toml."""
    from reconciler.state.backends.config import resolve_state_config

    folder = None
    if paths:
        first = Path(paths[0])
        folder = first if first.is_dir() else first.parent
    return resolve_state_config(backend=backend, dsn_env=dsn_env, cwd=cwd, target_name=target_name, folder=folder)


def open_business(target: Target, paths: Sequence[str | Path], *, state_path: str | None = None,
                  state_backend: str | None = None, state_dsn_env: str | None = None, cwd: Path,
                  env: Mapping[str, str], concurrency: int | None = None, rate: float | None = None,
                  embedded: EmbeddedTransport | None = None) -> OpenBusiness:
    """Open the business of ``target`` whose manifests are ``paths`` (the state file beside them,
    ``state_path`` if given, or the backend the configuration names)."""
    from reconciler.state.backends import open_backend
    from reconciler.state.store import StateStore, TargetRef

    config = state_config(paths, target_name=target.name, backend=state_backend, dsn_env=state_dsn_env, cwd=cwd)
    if config.is_local:
        store = StateStore.locate(paths, state_path)
    else:
        store = open_backend(config, target=TargetRef.of(target), state_path=state_path, env=dict(env))
    return OpenBusiness(target, store, concurrency=concurrency, rate=rate, embedded=embedded)


def open_client(target: Target, *, concurrency: int | None = None, rate: float | None = None,
                embedded: EmbeddedTransport | None = None) -> VcitaClient:
    """A client of ``target`` with the run's limits (the target kind's defaults where unset)."""
    from reconciler.remote.client import VcitaClient
    from reconciler.remote.dispatch import ClientSettings

    settings = ClientSettings.for_target(target, concurrency=concurrency, rate=rate)
    return VcitaClient(target, settings=settings, embedded=embedded)
