"""``reconciler doctor``: is this target ready, before the first apply?  Read-only.

    probe.py    one read sent exactly as asked, classified; the run's door/token predicted from it
    report.py   diagnose(): every route on every door, tokens, feature gate, clock, latency, and
                the reconciler.toml lines that would fix what fails
    render.py   the text form (JSON: Report.to_json)

Nothing here creates or changes anything in vcita (only GETs are sent, with made-up ids where an
object is addressed) and nothing writes a file.
"""

from reconciler.doctor.probe import PROBE_ID, READ_ROUTES
from reconciler.doctor.render import render_text
from reconciler.doctor.report import Report, diagnose

__all__ = ["PROBE_ID", "READ_ROUTES", "Report", "diagnose", "render_text"]
