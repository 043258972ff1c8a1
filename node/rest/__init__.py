"""The auditor REST API: `create_app` (routes, node/rest/app.py) over `answers` (what each
route answers), `models` (the response shapes), `views` (records as JSON) and `cursors`."""

from provledger.node.rest.app import NodeView, StoreView, create_app
from provledger.node.rest.cursors import encode_cursor

__all__ = ["NodeView", "StoreView", "create_app", "encode_cursor"]
