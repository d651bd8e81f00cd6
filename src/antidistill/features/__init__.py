"""Feature stages: request-level signals (:mod:`.requests`) and per-account features.

Submodules are imported explicitly by their users (``from antidistill.features.requests import
request_features``) so importing the package stays cheap.
"""
