"""The demo business of the sandbox, as the sandbox tests name it (its ids and tokens).

A module of its own (``tests/support`` is on pytest's path): test modules importing from a
``conftest`` clash when several test folders are collected together."""

from __future__ import annotations

from reconciler.sandbox import DEMO

SERVICES = [s["id"] for s in DEMO["services"]]
CLIENTS = [c["id"] for c in DEMO["clients"]]
STAFF = DEMO["tokens"]["staff"]
DIRECTORY = DEMO["tokens"]["directory"]
BUSINESS = DEMO["business"]["id"]
