"""Text on its way to a terminal or a log: control characters escaped, known secrets masked.

Anything a server sends (an error body, a header, a malformed status line) or a file holds may
carry escape sequences, bells, carriage returns or line breaks that would rewrite what a person
sees ("Apply complete" forged on a line of its own), and a server may echo a request's
``Authorization`` header back.  Two tools, used where such text enters a message and again at the
output boundaries (the CLI's console and its logging handler):

* :func:`printable` escapes every character that is not printable (C0/C1 controls, DEL, format
  characters such as U+202E, lone surrogates) as a Python escape (``\\x1b``, ``\\n``), optionally
  keeping some (``keep="\\n"``), and can cut the text to a length;
* :func:`register_secret` remembers a secret's value for the life of the process (every
  ``Secret`` registers itself, so do proxy passwords); :func:`redact` replaces each remembered value,
  and its percent-encoded form, with ``***``.
"""

from __future__ import annotations

from urllib.parse import quote

MASK = "***"
_MIN_SECRET = 4  # shorter values would mask ordinary words; no token is that short
_secrets: set[str] = set()


def register_secret(value: str) -> None:
    """Remember ``value`` so that :func:`redact` masks it wherever it appears."""
    value = value.strip()
    if len(value) < _MIN_SECRET:
        return
    _secrets.add(value)
    quoted = quote(value, safe="")
    if quoted != value:
        _secrets.add(quoted)


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by ``***`` (longest first)."""
    if not _secrets:
        return text
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def printable(text: str, *, limit: int | None = None, keep: str = "") -> str:
    """``text`` with every non-printable character escaped (except those in ``keep``), cut to
    ``limit`` characters (``...`` marks a cut)."""
    if limit is not None and len(text) > limit:
        text = text[:limit] + "..."
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c in keep else repr(c)[1:-1] for c in text)


def printable_json(text: str) -> str:
    """JSON text with every non-printable character except line breaks written as a JSON escape
    (``\\u202e``), so that it stays valid JSON and means the same."""
    if text.isprintable():
        return text
    out = []
    for c in text:
        if c.isprintable() or c == "\n":
            out.append(c)
        elif ord(c) < 0x10000:
            out.append(f"\\u{ord(c):04x}")
        else:
            high, low = divmod(ord(c) - 0x10000, 0x400)
            out.append(f"\\u{0xD800 + high:04x}\\u{0xDC00 + low:04x}")
    return "".join(out)


def clean(text: str, *, keep: str = "\n") -> str:
    """What the console and the log handler print: secrets masked, then controls escaped."""
    return printable(redact(text), keep=keep)
