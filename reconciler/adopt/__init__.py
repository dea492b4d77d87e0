"""Bringing existing vcita objects under management.

``named`` (``reconciler import ADDRESS ID`` and ``import --from FILE``), ``discover``
(``import --discover``: the state rebuilt from vcita's second memory), ``export`` and
``export_clients`` (``reconciler export``: manifests written and state recorded for a whole
business).
"""
