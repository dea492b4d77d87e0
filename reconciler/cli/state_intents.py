"""``reconciler state forget-intent``'s guard: a create is not forgotten while vcita may still be
making it or its lists may not show it yet.

A pending create records when it was about to be sent (``opened_at``).  Until the target's send
window + list lag + clock skew have passed (``reconciler.core.listlag``), not finding its package
through vcita's payment requests proves nothing: the request may still be on its way, or the
list may not show it yet.  Forgetting it then lets the next plan create it a second time, so
``forget-intent`` refuses such a record unless ``--force`` (a person checked vcita by hand).
Nothing here contacts vcita.
"""

from __future__ import annotations

from typing import Any

from reconciler.cli.common import resolve
from reconciler.core.errors import StateError


def list_lag(manifests: str, target_name: str | None) -> Any:
    """The list-lag bounds (``reconciler.core.listlag``) of the target plan would use; the
    ``RECONCILER_*`` variables and the defaults when no target can be resolved (nothing is read
    from vcita either way)."""
    import os

    from reconciler.core.errors import ConfigError
    from reconciler.core.listlag import ListLag

    try:
        return resolve({"target_name": target_name}, [manifests]).list_lag
    except ConfigError:
        return ListLag.from_settings({}, os.environ, where="the environment")


def refuse_recent(intents: dict[str, Any], lag: Any) -> None:
    """StateError (nothing forgotten) when one of the creates was recorded so recently that vcita
    may still be executing it (a create leaves up to the send window after its record) or its
    lists may not show it yet (list lag, clock skew): not finding it proves nothing yet, and
    forgetting it now lets the next plan create it a second time."""
    from datetime import UTC, datetime

    from reconciler.core.listlag import utc_stamp

    now = datetime.now(UTC)
    recent = []
    for address, found in intents.items():
        intent = found[0]
        try:
            settled = lag.settled_at(intent.opened_at)
        except ValueError:  # an unreadable time: its age cannot be told, so it may be recent
            recent.append((address, intent, None))
            continue
        if settled > now:
            recent.append((address, intent, settled))
    if not recent:
        return
    shown = "; ".join(f"{a} (intent {it.id}, recorded at {it.opened_at}: not before "
                      f"{utc_stamp(when) if when else 'an unknown time'})" for a, it, when in recent)
    raise StateError(
        f"too recent to forget: {shown}. Until then vcita may still be executing the create (it may leave up to "
        f"{lag.send_window:g} s after its record) or not list it yet (list lag {lag.lag:g} s, clock skew "
        f"{lag.skew:g} s), so not finding it proves nothing, and the next plan would create it a second time; "
        "nothing was forgotten",
        hint="Run 'reconciler plan' once that time has passed: it adopts what vcita made. If you checked the "
             "client's packages in vcita by hand and it is not there, run this again with --force.")
