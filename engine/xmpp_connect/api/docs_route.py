"""``GET /docs``: the OpenAPI document rendered by Swagger UI, its assets served from the swagger-ui-bundle
package (no CDN: the service may run without internet)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

ASSETS = "/docs/assets"
PAGE = f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>xmpp-connect API</title>
  <link rel="stylesheet" href="{ASSETS}/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{ASSETS}/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({{url: "/openapi.json", dom_id: "#swagger-ui", docExpansion: "list",
                                  deepLinking: true, tryItOutEnabled: false}});
  </script>
</body>
</html>
"""


def docs_routes() -> list[BaseRoute]:
    async def docs(_request: Request) -> Response:
        return HTMLResponse(PAGE)

    return [Route("/docs", docs), Mount(ASSETS, StaticFiles(directory=swagger_ui_path), name="docs-assets")]
