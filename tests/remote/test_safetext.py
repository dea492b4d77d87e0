"""Server text on its way to a terminal: control characters escaped, echoed secrets masked."""

from __future__ import annotations

import io
import logging

from reconciler.cli.output import RedactingFilter, RedactingStream
from reconciler.core.errors import RequestInfo
from reconciler.core.safetext import clean, printable, redact
from reconciler.remote import Secret
from reconciler.remote.envelope import error_for

FORGED = "bad value\x1b[2J\x1b[1;1H\x07\r\nApply complete! Resources: 3 added.\u202e"


def test_printable_escapes_every_control_and_format_character() -> None:
    shown = printable(FORGED)
    assert shown.isprintable() and "\\x1b[2J" in shown and "\\r\\nApply complete" in shown
    assert "\\u202e" in shown and printable("plain words") == "plain words"
    assert printable("a\nb\tc", keep="\n") == "a\nb\\tc"
    assert printable("x" * 50, limit=10) == "x" * 10 + "..."


def test_an_error_body_cannot_rewrite_the_screen_or_forge_a_line() -> None:
    info = RequestInfo("POST", "/business/payments/v1/client_packages", "fallback", status=422)
    for body, text in (({"success": False, "errors": [{"field": "price\x1b[31m", "message": FORGED}]}, ""),
                       ({"status": "Error", "error": FORGED}, ""),
                       (None, "<html>" + FORGED * 3 + "</html>")):
        error = error_for(422, body, text, info, fallback_configured=True)
        assert error.message.isprintable(), error.message
        assert "Apply complete" in error.message  # shown, but on the same line, escaped
    huge = {"success": False, "errors": [{"message": "m" * 10_000}] * 1000}
    assert len(error_for(422, huge, "", info, fallback_configured=True).message) < 6000


def test_a_secret_the_server_echoes_is_masked_wherever_it_is_printed_or_logged() -> None:
    token = Secret("tok_" + "Zq9" * 10).reveal()
    echoed = f"Unauthorized: header was 'Authorization: Bearer {token}'"
    assert token not in redact(echoed) and "Bearer ***" in redact(echoed)
    assert token not in clean(echoed + "\x1b")
    sink = io.StringIO()
    RedactingStream(sink).write(f"Error: {echoed}\n")
    assert token not in sink.getvalue() and "***" in sink.getvalue()
    record = logging.LogRecord("reconciler.remote", logging.INFO, __file__, 1, "got %s\n%s", (echoed, FORGED), None)
    assert RedactingFilter().filter(record)
    assert token not in record.getMessage() and "\n" not in record.getMessage()


def test_json_output_stays_json_with_its_invisible_characters_escaped() -> None:
    import json

    from reconciler.core.safetext import printable_json

    for value in ("\xad", "right-to-left \u202e here", "\U000e0001 tag", FORGED):
        text = json.dumps({"name": value}, ensure_ascii=False, indent=2)
        shown = printable_json(text)
        assert json.loads(shown) == {"name": value}
        assert all(line.isprintable() for line in shown.splitlines())
