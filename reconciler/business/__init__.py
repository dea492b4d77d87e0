"""Opening one business for a run (``open``): its state store and its client, the same way for
every command and for each business of a fleet run.  How its *target* is chosen stays with the
caller: the CLI's flags, environment and ``reconciler.toml`` (``remote.target.resolve_target``), or
a fleet folder's own ``target.toml`` (``fleet.businesses.folder_target``)."""
