"""The JSON Schema of one manifest document, for editors and validators.

Written for people: every field has a description (from API-NOTES §6) and examples, enum values
are explained, ``kind`` selects the spec through ``if``/``then`` (so a validator reports the
errors of the document's own kind, not of every kind), and the cross-field rules JSON Schema can
express are in it: the discount pair (``dependentRequired``), a percentage of at most 100, the
currency list, date patterns.  What it cannot express (references between documents, unique
names, dates in order, a service in two items, whole numbers written as ``1.0``, at most four
decimal places) is checked by
``reconciler validate``; ``tests/manifest/test_schema_validators.py`` keeps that list exact.

The field tables of the models (``reconciler.model.manifest``) and of this schema are held
equal by a test; constraints come from the models' constants.  The schema refuses null for an
optional field, which ``validate`` reads as "left out": leaving the field out says it plainly.
``SCHEMA_VERSION`` changes when
the schema does (the committed ``schema/reconciler-v1.schema.json`` is compared with it).
"""

from __future__ import annotations

from typing import Any

from reconciler.model.manifest import API_VERSION, MEMBER_EMAIL_PATTERN, VALID_FOR_PATTERN
from reconciler.model.values import (
    MAX_BOOKINGS,
    MAX_EXPIRATION,
    MAX_MONEY,
    MAX_ORDER,
    MONEY_PLACES,
    NAME_PATTERN,
    UID_PATTERN,
    currency_codes,
)

SCHEMA_VERSION = "1.5.0"
SCHEMA_ID = "urn:reconciler:schema:manifest:reconciler-v1"
DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


def _enum(values: dict[str, str], *, any_case: bool = True) -> dict[str, Any]:
    """An enum whose values are explained (description, and VS Code's enumDescriptions)."""
    keys = list(values)
    enum = keys + [k.lower() for k in keys] if any_case else keys
    meanings = [values[k.upper()] for k in enum] if any_case else [values[k] for k in enum]
    listed = "; ".join(f"`{k}` {v}" for k, v in values.items())
    case = " Lower case is accepted and stored upper case." if any_case else ""
    return {"type": "string", "enum": enum, "enumDescriptions": meanings,
            "markdownEnumDescriptions": meanings, "description": f"{listed}.{case}"}


def _currency() -> dict[str, Any]:
    codes = sorted(currency_codes())
    # Any case is accepted (stored upper case): the enum offers completions, the pattern matches
    # the same codes in any case (ECMA regexes have no case-insensitive flag inside a schema).
    any_case = "|".join("".join(f"[{c}{c.lower()}]" for c in code) for code in codes)
    return {
        "description": "ISO 4217 code of the package's currency, e.g. USD, EUR, ILS (any case in, upper case out).",
        "examples": ["USD", "EUR", "ILS"],
        "anyOf": [{"type": "string", "enum": codes}, {"type": "string", "pattern": f"^(?:{any_case})$"}],
    }


UID = {"type": "string", "pattern": UID_PATTERN, "minLength": 1, "maxLength": 64}


def _uid(description: str, example: str) -> dict[str, Any]:
    return {**UID, "description": description, "examples": [example]}


def _uid_ref(description: str, example: str) -> dict[str, Any]:
    return {
        "description": f"{description} Written as the UID or as {{id: UID}}.",
        "examples": [example, {"id": example}],
        "anyOf": [UID, {"type": "object", "properties": {"id": UID}, "required": ["id"],
                        "additionalProperties": False}],
    }


def _money(description: str, examples: list[Any]) -> dict[str, Any]:
    # At most MONEY_PLACES decimals is validate's alone: multipleOf 0.0001 fails on binary floats.
    return {"type": "number", "minimum": 0, "maximum": float(MAX_MONEY), "examples": examples,
            "description": f"{description} A number from 0 to {MAX_MONEY:,} with at most {MONEY_PLACES} decimal "
                           "places, written without quotes."}


def _date(description: str, example: str) -> dict[str, Any]:
    return {"type": "string", "format": "date", "pattern": DATE_PATTERN,
            "description": description + " YYYY-MM-DD, a calendar date (not a timestamp).", "examples": [example]}


def _services(description: str) -> dict[str, Any]:
    return {"type": "array", "minItems": 1, "uniqueItems": True, "description": description,
            "items": _uid_ref("A service of the business.", "bop374z43h5xezh3"),
            "examples": [["bop374z43h5xezh3", "vtgltmqazx4tub48"]]}


METADATA = {
    "type": "object", "additionalProperties": False, "required": ["name"],
    "description": "Identifies the object in the manifests (not sent to vcita).",
    "properties": {"name": {
        "type": "string", "pattern": NAME_PATTERN, "maxLength": 63,
        "description": "Stable key of the object: lower-case letters, digits and '-', at most 63 characters, "
                       "unique per kind across all files. Renaming it is a move ('reconciler state mv'), "
                       "not a new object.",
        "examples": ["piano-10", "alice-piano-2026"],
    }},
}

ITEM = {
    "type": "object", "additionalProperties": False, "required": ["total_bookings", "services"],
    "description": "A service group: total_bookings credits, usable on any of services. "
                   "A service appears in one item only.",
    "properties": {
        "total_bookings": {"type": "integer", "minimum": 1, "maximum": MAX_BOOKINGS, "examples": [10],
                           "description": f"Credits of this group in each client package (a whole number from 1 "
                                          f"to {MAX_BOOKINGS:,})."},
        "services": _services("The services these credits can book (at least one, none repeated)."),
    },
}

PRODUCT = {
    "type": "object", "additionalProperties": False, "required": ["id", "quantity"],
    "description": "A product sold with the package.",
    "properties": {
        "id": _uid("UID of the product (in the business's product list).", "prd7cj1pq2w3e4r5"),
        "quantity": {"type": "integer", "minimum": 1, "maximum": 5, "examples": [1],
                     "description": "How many of the product come with the package (1 to 5)."},
    },
}

CATALOG_SPEC: dict[str, Any] = {
    "type": "object", "additionalProperties": False,
    "description": "A package of the business's catalog: mirrors POST /platform/v1/payment/packages. "
                   "Optional fields left out are not managed: reconciler never changes their value in vcita.",
    "required": ["name", "price", "currency", "expiration", "expiration_unit", "items"],
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 255, "examples": ["10 Piano Lessons"],
                 "description": "Display name of the package, as clients see it."},
        "price": _money("Price of the package in currency (vcita answers it as a string; compared as a number).",
                        [540, 99.5]),
        "currency": _currency(),
        "expiration": {"type": "integer", "minimum": 1, "maximum": max(MAX_EXPIRATION.values()), "examples": [3],
                       "description": "With expiration_unit: how long a client package stays valid by default "
                                      "(its valid_until when none is given). A whole number >= 1, at most about a "
                                      "hundred years: " + ", ".join(f"{n:,} {u}" for u, n in MAX_EXPIRATION.items())
                                      + "."},
        "expiration_unit": {**_enum({"D": "days", "W": "weeks", "M": "months", "Y": "years"}),
                            "examples": ["M"]},
        "items": {"type": "array", "minItems": 1, "items": ITEM,
                  "description": "The credits of the package, one entry per service group (the whole list is sent "
                                 "on update). Items are matched by their set of services, not their position.",
                  "examples": [[{"total_bookings": 10, "services": ["bop374z43h5xezh3"]}]]},
        "products": {"type": "array", "maxItems": 3, "items": PRODUCT, "examples": [[]],
                     "description": "Up to 3 products sold with the package. Write [] for none: the vcita API refuses "
                                    "null (left out, it is [])."},
        "description": {"type": "string", "examples": ["Ten lessons, any level."],
                        "description": "Longer text shown with the package."},
        "discount_amount": {**_money("Discount shown with the package (for view purposes, per the API): an amount in "
                                     "currency (discount_unit F) or a percentage (P, at most 100). Goes with "
                                     "discount_unit.", [15])},
        "discount_unit": {**_enum({"F": "a fixed amount in currency", "P": "a percentage of the price"}),
                          "examples": ["F"]},
        "image_path": {"type": "string", "examples": ["/images/piano.png"],
                       "description": "Path or URL of the package's image."},
        "online_payment_enabled": {"type": "boolean", "examples": [True],
                                   "description": "Clients may buy the package themselves (the public catalog "
                                                  "lists only these). true or false, unquoted."},
        "active": {"type": "boolean", "examples": [False],
                   "description": "false deactivates the package (no longer sold; client packages already sold "
                                  "are kept), true reactivates it; left out, not managed. Sent through the update "
                                  "route, which documents it in its prose only (not verified against vcita yet)."},
        "order": {"type": "integer", "minimum": 1, "maximum": MAX_ORDER, "examples": [1],
                  "description": "Position in the catalog's display order (lower first), set through the reorder "
                                 "route; or list the packages in a CatalogOrder document instead."},
    },
    "dependentRequired": {"discount_amount": ["discount_unit"], "discount_unit": ["discount_amount"]},
    "allOf": [
        {"if": {"properties": {"discount_unit": {"enum": ["P", "p"]}}, "required": ["discount_unit"]},
         "then": {"properties": {"discount_amount": {"maximum": 100}}}},
        *({"if": {"properties": {"expiration_unit": {"enum": [unit, unit.lower()]}}, "required": ["expiration_unit"]},
           "then": {"properties": {"expiration": {"maximum": longest}}}}
          for unit, longest in MAX_EXPIRATION.items()),
    ],
}

CLIENT_REF = {
    "description": "The client who holds the package: a client UID, {id: UID}, or {email: ADDRESS} (found through "
                   "the clients list at plan time).",
    "examples": ["q8vwi2d1xq4m7p0k", {"email": "alice@example.com"}],
    "anyOf": [
        UID,
        {"type": "object", "additionalProperties": False, "minProperties": 1, "maxProperties": 1,
         "properties": {"id": UID, "email": {"type": "string", "pattern": EMAIL_PATTERN}}},
    ],
}

PACKAGE_REF = {
    "description": "The catalog package: the metadata.name of a CatalogPackage in the manifests, or {id: UID} of "
                   "one not managed here.",
    "examples": ["piano-10", {"id": "7dq1mb2tyg9n4r6p"}],
    "anyOf": [
        {"type": "string", "pattern": NAME_PATTERN},
        {"type": "object", "additionalProperties": False, "minProperties": 1, "maxProperties": 1,
         "properties": {"name": {"type": "string", "pattern": NAME_PATTERN}, "id": UID}},
    ],
}

CREDIT = {
    "type": "object", "additionalProperties": False, "required": ["services", "total_bookings"],
    "description": "The desired credits of the package item with exactly these services.",
    "properties": {
        "services": _services("The services of the package item whose credits this sets."),
        "total_bookings": {"type": "integer", "minimum": 0, "maximum": MAX_BOOKINGS, "examples": [12],
                           "description": f"Credits of that item for this client (0 to {MAX_BOOKINGS:,}); never below "
                                          "what was already used (bookings_usage), which the plan checks."},
    },
}

VALID_FOR = {
    "type": "string", "pattern": VALID_FOR_PATTERN, "examples": ["3M", "10W", "30D", "1Y"],
    "description": "How long the package is valid from valid_from: a whole number and a unit D, W, M or Y (any case). "
                   "valid_until is computed from valid_from (a month end clamps: 2027-01-31 + 1M = 2027-02-28), "
                   "never from today's date, so it does not move between plans. Needs valid_from; instead of "
                   "valid_until.",
}

CLIENT_SPEC: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["client", "package"],
    "description": "A catalog package assigned to a client: mirrors POST /platform/v1/payment/client_packages. "
                   "Creating "
                   "one opens a payment request (the client is billed). client, package, price and valid_from cannot "
                   "change in place; optional fields left out are not managed.",
    "properties": {
        "client": CLIENT_REF,
        "package": PACKAGE_REF,
        "valid_from": _date("First day of validity (vcita's default: the day it is created).", "2026-09-01"),
        "valid_until": _date("Last day of validity, not before valid_from (vcita's default: from the package's "
                             "expiration). The one date that can change in place.", "2027-08-31"),
        "valid_for": VALID_FOR,
        "price": _money("Price for this client, overriding the catalog price.", [480]),
        "tax_uids": {"type": "array", "items": UID, "examples": [["tx3k9d0s1a2b3c4d"]],
                     "description": "UIDs of the taxes applied to the payment request."},
        "matter_uid": _uid("UID of the client's matter (conversation) the package belongs to.", "mt1q2w3e4r5t6y7u"),
        "booking_credits": {"type": "array", "items": CREDIT,
                            "description": "Desired credits per package item (the one other field that can change in "
                                           "place); an item left out keeps its credits.",
                            "examples": [[{"services": ["bop374z43h5xezh3"], "total_bookings": 12}]]},
        "repeat_purchase": {"type": "boolean", "default": False, "examples": [True],
                            "description": "A deliberate further sale of a catalog package this client already has "
                                           "(a renewal, a repeat purchase): opens another payment request. Without "
                                           "it, an object with the same client and catalog package (and valid_from / "
                                           "price when given) as one reconciler already tracks or remembers is "
                                           "refused, so a rename or a copy never bills a client twice."},
    },
    "dependentRequired": {"valid_for": ["valid_from"]},
    "not": {"required": ["valid_for", "valid_until"]},
}

_SHARED = ("valid_from", "valid_until", "valid_for", "price", "tax_uids", "matter_uid", "booking_credits",
           "repeat_purchase")

SET_CLIENT = {
    "description": "A member: a client UID, or a mapping with id or email and the shared fields this client "
                   "overrides. Each member is a client package of its own, addressed by its client "
                   "(client_package_set.NAME[\"alice@example.com\"]); adding or removing one changes that member only.",
    "examples": ["ktsrl7f6h94run82", {"email": "chloe.dubois@example.com"}, {"id": "uqsdf813cr3u1hex", "price": 450}],
    "anyOf": [
        UID,
        {"type": "object", "additionalProperties": False, "minProperties": 1,
         "properties": {
             "id": _uid("The UID of the member's client.", "uqsdf813cr3u1hex"),
             "email": {"type": "string", "pattern": MEMBER_EMAIL_PATTERN, "maxLength": 254,
                       "examples": ["chloe.dubois@example.com"],
                       "description": "The client's e-mail, found through the clients list at plan time (the member's "
                                      "address holds it in lower case)."},
             **{k: CLIENT_SPEC["properties"][k] for k in _SHARED},
         },
         "oneOf": [{"required": ["id"], "not": {"required": ["email"]}},
                   {"required": ["email"], "not": {"required": ["id"]}}]},
    ],
}

CLIENT_SET_SPEC: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["package", "clients"],
    "description": "One catalog package assigned to many clients: each member is a client package of its own (one "
                   "payment request each), with the fields below shared and overridable per client.",
    "properties": {
        "package": PACKAGE_REF,
        "clients": {"type": "array", "items": SET_CLIENT, "examples": [["ktsrl7f6h94run82",
                                                                        {"email": "chloe.dubois@example.com"}]],
                    "description": "The clients, each once: by UID or e-mail, with optional per-client overrides."},
        **{k: CLIENT_SPEC["properties"][k] for k in _SHARED},
    },
}

CATALOG_ORDER_SPEC: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["packages"],
    "description": "The catalog's display order: CatalogPackage names, the first shown first (each gets order 1, "
                   "2, 3...; a package listed here declares no order of its own). At most one CatalogOrder.",
    "properties": {
        "packages": {"type": "array", "minItems": 1, "maxItems": MAX_ORDER, "uniqueItems": True,
                     "items": {"type": "string", "pattern": NAME_PATTERN},
                     "examples": [["piano-10", "guitar-5", "complete-musician"]],
                     "description": "The metadata.name of CatalogPackage documents, in display order."},
    },
}

KINDS = {
    "CatalogPackage": ("CatalogPackageSpec", "a package of the business's catalog (price, validity, credits)"),
    "ClientPackage": ("ClientPackageSpec", "a catalog package assigned to a client (bills the client once)"),
    "ClientPackageSet": ("ClientPackageSetSpec", "one catalog package assigned to many clients (one client package "
                                                 "each)"),
    "CatalogOrder": ("CatalogOrderSpec", "the catalog's display order (CatalogPackage names, first shown first)"),
}


def manifest_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one manifest document."""
    kinds = list(KINDS)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": f"reconciler manifest document ({API_VERSION}), schema {SCHEMA_VERSION}",
        "description": "One YAML document of a reconciler manifest file (a file may hold several, separated by ---). "
                       "Rules between documents (references, unique names) are checked by 'reconciler validate'.",
        "x-schema-version": SCHEMA_VERSION,
        "type": "object",
        "additionalProperties": False,
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": API_VERSION, "description": "Version of the manifest format.",
                           "examples": [API_VERSION]},
            "kind": {"type": "string", "enum": kinds, "enumDescriptions": [KINDS[k][1] for k in kinds],
                     "markdownEnumDescriptions": [KINDS[k][1] for k in kinds],
                     "description": "; ".join(f"`{k}`: {v[1]}" for k, v in KINDS.items()) + ".",
                     "examples": kinds},
            "metadata": {"$ref": "#/$defs/Metadata"},
            "spec": {"type": "object", "description": "The object itself; its fields depend on kind."},
        },
        "allOf": [
            {"if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]},
             "then": {"properties": {"spec": {"$ref": f"#/$defs/{spec}"}}}}
            for kind, (spec, _) in KINDS.items()
        ],
        "$defs": {"Metadata": METADATA, "CatalogPackageSpec": CATALOG_SPEC, "ClientPackageSpec": CLIENT_SPEC,
                  "ClientPackageSetSpec": CLIENT_SET_SPEC, "CatalogOrderSpec": CATALOG_ORDER_SPEC},
    }
