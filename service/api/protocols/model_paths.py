"""Model names and versions in URL paths stop at a ``:``: the ``{name:model}`` path convertor.

Usage (in a route's path)::

    # NAME is "{name:model}", VERSION "{version:model}"
    from service.api.protocols.model_paths import NAME, VERSION

    @router.get(f"/v1/models/{NAME}/versions/{VERSION}")

Why: Starlette's plain ``{name}`` matches any text without a slash, ``mnist:predict`` too, so
``GET /v1/models/{name}`` would also answer TF Serving's ``/v1/models/mnist:predict`` (as an
unknown model), and that path's ``Allow`` would name GET beside :predict's POST. Routes whose
names and versions use this convertor leave ``/v1/models/mnist:predict`` to :predict alone: a
GET on it is a 405 that says POST. A model or version whose name holds a ``:`` is not
addressable in TF Serving's URLs anyway.

Starlette compiles a route's path, with its convertors read from one table, when the route is
declared; so importing this module registers the ``model`` convertor, a declaration (like a
class), done once.
"""

from __future__ import annotations

from starlette.convertors import StringConvertor, register_url_convertor


class ModelNameConvertor(StringConvertor):
    """Text without a slash or a colon."""

    regex = "[^/:]+"


register_url_convertor("model", ModelNameConvertor())

NAME = "{name:model}"
VERSION = "{version:model}"
