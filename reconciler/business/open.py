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
                  embedded: EmbeddedTransport | None = None, writes: bool = False) -> OpenBusiness:
    """Open the business of ``target`` whose manifests are ``paths`` (the state file beside them,
    ``state_path`` if given, or the backend the configuration names).  ``writes``: the command
    writes the state (apply, import, export, drift --write-back), refused while a local state
    file is gone and its backup is not (:func:`_refuse_a_new_state_over_a_lost_one`)."""
    from reconciler.state.backends import open_backend
    from reconciler.state.store import StateStore, TargetRef

    config = state_config(paths, target_name=target.name, backend=state_backend, dsn_env=state_dsn_env, cwd=cwd)
    if config.is_local:
        store = StateStore.locate(paths, state_path)
        if state_path is None:
            _refuse_a_state_beside_an_enclosing_one(store, paths)
            _refuse_paths_of_two_states(store, paths)
        if writes:
            _refuse_a_new_state_over_a_lost_one(store)
    else:
        store = open_backend(config, target=TargetRef.of(target), state_path=state_path, env=dict(env))
    return OpenBusiness(target, store, concurrency=concurrency, rate=rate, embedded=embedded)


def _refuse_a_state_beside_an_enclosing_one(store: Any, paths: Sequence[str | Path]) -> None:
    """A local state is found next to the *first* manifest path: ``plan manifests/clients`` (a
    plan over one sub-folder) or ``plan manifests/clients manifests/catalog.yaml`` would start
    from an empty ``manifests/clients/.reconciler/state.json`` while ``manifests/.reconciler``
    records what was sold: a blank slate (nothing tracked, so every client package a create,
    stopped only by the second memory where the target serves it), and whatever the run creates
    recorded where the next full plan does not look.  So when the state beside the paths does
    not exist but one does in a folder holding any of them, the run is refused, naming it."""
    from reconciler.core.errors import ConfigError
    from reconciler.state.store import STATE_DIR

    if store.exists() or store.backup_path.exists():
        return
    own = store.path.parent.absolute()
    seen: set[Path] = set()
    for path in paths or ("manifests",):
        folder = Path(path).absolute()
        for above in (folder, *folder.parents):
            candidate = above / STATE_DIR / store.path.name
            if above in seen or candidate.parent == own:
                continue
            seen.add(above)
            if candidate.is_file() or candidate.with_name(candidate.name + ".backup").is_file():
                shown = _shown(candidate)
                raise ConfigError(
                    f"no state at {_shown(store.path)}, but {shown} holds one for a folder that contains these "
                    "manifests: this run would start from an empty state (the state is looked for next to the "
                    "first path), knowing nothing of what that one records; nothing was read or written",
                    hint=f"Use that state: add '--state {shown}' (a plan over some paths touches only them), or give "
                         "the folder that holds it first. Pass --state to start a separate state on purpose.")


def _refuse_paths_of_two_states(store: Any, paths: Sequence[str | Path]) -> None:
    """The state is the one beside the *first* path: ``plan a b`` and ``plan b a`` would use
    different ones when both folders have a state, and the objects the other state tracks would
    look untracked (created again where the second memory cannot stop it).  A run whose paths
    have states of their own other than the one chosen is refused, naming them."""
    from reconciler.core.errors import ConfigError
    from reconciler.state.store import STATE_NAME, state_dir_for

    chosen = store.path.absolute()
    others = []
    for path in list(paths)[1:]:
        beside = (state_dir_for([path]) / STATE_NAME).absolute()
        if beside != chosen and beside not in others and (
                beside.is_file() or beside.with_name(beside.name + ".backup").is_file()):
            others.append(beside)
    if others:
        shown = ", ".join(_shown(o) for o in others)
        raise ConfigError(
            f"these manifests have more than one state: {_shown(store.path)} (beside the first path, the one this "
            f"run would use) and {shown}; what the other state tracks would look untracked here, and be created "
            "again; nothing was read or written",
            hint="Run each folder on its own (its own state), or choose one state for all of them with "
                 "'--state FILE' after merging them ('reconciler state list' shows what each tracks).")


def _refuse_a_new_state_over_a_lost_one(store: Any) -> None:
    """A state file gone while its backup is there is a state deleted or moved by mistake (a
    checkout that left it out, a ``git rm``): plan and drift warn about it.  A command that
    writes would start a new state there, and its second write links the new state's first
    version over the backup, the last copy of every record the lost state held (reproduced: an
    apply of the catalog alone, after a warning, left a backup of 2 records where 11 had been; a
    later plan would sell the 8 client packages again wherever the payment requests cannot be
    listed).  So it is refused until a person restores the state or sets the backup aside."""
    from reconciler.core.errors import StateError

    backup_path = store.backup_path
    if store.exists() or backup_path.is_symlink() or not backup_path.is_file():
        return  # (a link planted in its place is refused by the state's own checks, naming it)
    path, backup = _shown(store.path), _shown(store.backup_path)
    raise StateError(
        f"there is no state file {path}, but its backup {backup} is there: the state was most likely lost, and "
        "writing a new one would replace that backup, the last record of what reconciler created; nothing was "
        "read or written",
        hint=f"Restore it ('cp {backup} {path}') and run again; to start a new state on purpose, move the backup "
             "aside first (keep it: it lists the client packages reconciler created).")


def _shown(path: Path) -> str:
    try:
        return str(path.absolute().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def open_client(target: Target, *, concurrency: int | None = None, rate: float | None = None,
                embedded: EmbeddedTransport | None = None) -> VcitaClient:
    """A client of ``target`` with the run's limits (the target kind's defaults where unset)."""
    from reconciler.remote.client import VcitaClient
    from reconciler.remote.dispatch import ClientSettings

    settings = ClientSettings.for_target(target, concurrency=concurrency, rate=rate)
    return VcitaClient(target, settings=settings, embedded=embedded)
