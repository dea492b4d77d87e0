"""Manifests: YAML files in, models out, every error located at its file and line.

``files`` (discovery: which files, read without following links), ``load`` (one parse per file,
the documents, the ``ManifestSet`` and the cross-document checks), ``locate`` (a position for
each error from the parsed tree), ``messages`` (pydantic's errors as one actionable message),
``scope`` (``--only``: the part of a ManifestSet a plan covers), ``yamledit`` (rewriting a value
in a manifest in place, comments kept: drift write-back and export) and ``setedit`` (the same for
one member of a ClientPackageSet).
"""
