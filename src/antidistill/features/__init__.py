"""Feature stages: request-level signals (:mod:`.requests`), staging the log with them into
DuckDB (:mod:`.staging`), and per-account features (:mod:`.accounts`).

Submodules are imported explicitly by their users (``from antidistill.features.requests import
request_features``) so importing the package stays cheap.
"""
