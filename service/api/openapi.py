"""The OpenAPI document and the interactive docs, served without the internet.

Usage (in :func:`service.app.create_app`)::

    install_openapi(app, settings)   # /openapi.json states the limits in force
    install_docs(app)                # /docs (Swagger UI) and /redoc, assets served locally

The routes' pydantic models give the shapes; this module adds what only the running service
knows, so that a schema-valid request is one the service accepts: the ``truncation_psi`` range
and the per-request limits of the settings, and from the served models the class range
(0..num_classes-1 of the model with the most classes) and the latent length ``z_dim``. The
document is rebuilt from a cached base on every request of /openapi.json (a few dicts), so that
it follows a hot reload.

The docs pages use the Swagger UI and ReDoc builds shipped in the ``fastapi-offline`` package,
served from ``/docs/assets``; the pages reference no other host.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from service.api.schemas import CompleteRequest, EncodeRequest, ScoreRequest
from service.settings import Settings

ASSETS_URL = "/docs/assets"


def _assets_dir() -> Path:
    import fastapi_offline  # imported here: only the docs need it

    return Path(fastapi_offline.__file__).parent / "static"


def install_docs(app: FastAPI) -> None:
    """Serve /docs and /redoc with locally served assets (create the app with docs_url=None)."""
    app.mount(ASSETS_URL, StaticFiles(directory=_assets_dir()), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - API docs",
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon.png",
            oauth2_redirect_url=None,
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - API reference",
            redoc_js_url=f"{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )


# --- the document -----------------------------------------------------------------------------


def _branches(schema: dict[str, Any], kind: str) -> Iterator[dict[str, Any]]:
    """``schema`` itself or its ``anyOf`` branches of JSON type ``kind``."""
    for branch in [schema, *schema.get("anyOf", [])]:
        if branch.get("type") == kind:
            yield branch


def _bound_class(schema: dict[str, Any], num_classes: int | None) -> None:
    """0..num_classes-1 on an int (or list of ints) class_label; ``None``: no model known yet."""
    if num_classes is None:
        return
    for branch in _branches(schema, "integer"):
        branch.update(minimum=0, maximum=num_classes - 1)
    for branch in _branches(schema, "array"):
        branch["items"].update(minimum=0, maximum=num_classes - 1)
    if num_classes == 0:
        # No served model has classes: only "no class" is accepted.
        schema.pop("anyOf", None)
        schema.pop("type", None)
        schema.update(type="null")


def _limits(settings: Settings, models: list[Any] | None) -> dict[str, Any]:
    num_classes = None if models is None else max((m.num_classes for m in models), default=0)
    z_dims = sorted({m.z_dim for m in models}) if models else []
    return {
        "psi": {"minimum": settings.min_truncation_psi, "maximum": settings.max_truncation_psi},
        "images": settings.max_images_per_request,
        "seed_chars": settings.max_seed_string_length,
        "classes": num_classes,
        "z_dim": (z_dims[0], z_dims[-1]) if z_dims else None,
        # A walk's frames are queued at once (service.api.animate): at most a queue's worth.
        "walk_frames": min(settings.max_walk_frames, settings.max_enqueued),
        "complete_steps": settings.max_complete_steps,
    }


def _bound_steps(schema: dict[str, Any], most: int) -> None:
    for branch in _branches(schema, "integer"):
        branch["maximum"] = most


def _bound_form(form: dict[str, Any], limits: dict[str, Any]) -> None:
    """The limits of a multipart upload (service.api.request_bodies): files per file field (the
    arrays), the class range and the steps."""
    for name, schema in form["properties"].items():
        if schema.get("type") == "array":
            schema["maxItems"] = limits["images"]
        elif name == "class_label":
            _bound_class(schema, limits["classes"])
        elif name == "steps":
            _bound_steps(schema, limits["complete_steps"])
    if limits["classes"] == 0:  # no class to give: the field goes
        form["properties"].pop("class_label", None)


def _apply(document: dict[str, Any], limits: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    generate = schemas["GenerateRequest"]["properties"]
    generate["truncation_psi"].update(limits["psi"])
    _bound_class(generate["class_label"], limits["classes"])
    for branch in _branches(generate["seeds"], "array"):
        branch["maxItems"] = limits["images"]
    for branch in _branches(generate["seeds"], "string"):
        branch["maxLength"] = limits["seed_chars"]
    for branch in _branches(generate["noise"], "array"):
        branch["maxItems"] = limits["images"]
        if limits["z_dim"] is not None:
            low, high = limits["z_dim"]
            branch["items"].update(minItems=low, maxItems=high)
    for branch in _branches(generate["count"], "integer"):
        branch["maximum"] = limits["images"]
    if "AnimateRequest" in schemas:
        properties = schemas["AnimateRequest"]["properties"]
        properties["truncation_psi"].update(limits["psi"])
        properties["frames"]["maximum"] = limits["walk_frames"]
        _bound_class(properties["class_label"], limits["classes"])
        for branch in _branches(properties["noise"], "array"):
            if limits["z_dim"] is not None:
                low, high = limits["z_dim"]
                branch["items"].update(minItems=low, maxItems=high)
    for partial in ("CompleteRequest", "EncodeRequest"):
        if partial not in schemas:
            continue
        properties = schemas[partial]["properties"]
        properties["images"]["maxItems"] = limits["images"]
        for branch in _branches(properties["masks"], "array"):
            branch["maxItems"] = limits["images"]
        _bound_class(properties["class_label"], limits["classes"])
        if "steps" in properties:
            _bound_steps(properties["steps"], limits["complete_steps"])
    score = schemas["ScoreRequest"]["properties"]
    score["images"]["maxItems"] = limits["images"]
    _bound_class(score["class_label"], limits["classes"])

    for methods in document["paths"].values():
        for operation in methods.values():
            for parameter in operation.get("parameters", []):
                name, schema = parameter["name"], parameter["schema"]
                if name == "truncation_psi":
                    schema.update(limits["psi"])
                elif name == "class_label":
                    _bound_class(schema, limits["classes"])
                elif name == "steps":
                    _bound_steps(schema, limits["complete_steps"])
            content = operation.get("requestBody", {}).get("content", {})
            if "multipart/form-data" in content:
                _bound_form(content["multipart/form-data"]["schema"], limits)
    if limits["classes"] == 0:  # no class to give: the parameters go
        for methods in document["paths"].values():
            for operation in methods.values():
                operation["parameters"] = [
                    p for p in operation.get("parameters", []) if p["name"] != "class_label"
                ]


def install_openapi(app: FastAPI, settings: Settings) -> None:
    """Make ``app.openapi()`` state the limits in force (settings and served models)."""
    base: dict[str, Any] = {}

    def build() -> dict[str, Any]:
        if not base:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            # /score, /complete and /encode read their JSON bodies themselves (they also take
            # multipart and raw images), so FastAPI does not see their models: add them for
            # the bodies' $ref.
            schemas = document["components"]["schemas"]
            for body in (ScoreRequest, CompleteRequest, EncodeRequest):
                schemas[body.__name__] = body.model_json_schema(
                    ref_template="#/components/schemas/{model}"
                )
            base.update(document)
        engine = getattr(app.state, "engine", None)
        models = list(engine.repository.all()) if engine is not None else None
        document = copy.deepcopy(base)
        _apply(document, _limits(settings, models))
        return document

    openapi: Callable[[], dict[str, Any]] = build
    app.openapi = openapi  # type: ignore[method-assign]
