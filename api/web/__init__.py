"""The insight web app for CX leads and HR, served by the API's app at `/` (docs/web.md)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from api.web.security import NOT_PAGES, PageHeaders, SignInRequired

STATIC_DIR = Path(__file__).resolve().parent / "static"


def install(app: FastAPI) -> None:
    """Serve the pages and their static assets from `app`, with their security headers."""
    from api.web import categories, pages

    app.add_middleware(PageHeaders)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(pages.router)
    app.include_router(categories.router)

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, _: SignInRequired) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/signin?next={quote(target, safe='')}", status_code=303)

    @app.exception_handler(HTTPException)
    async def _page_error(request: Request, exc: HTTPException) -> Response:
        if request.url.path.startswith(NOT_PAGES):
            return await http_exception_handler(request, exc)
        response = pages.render(request, "error.html", None, status_code=exc.status_code, status=exc.status_code,
                                detail=exc.detail)
        response.headers.update(exc.headers or {})
        return response

    @app.exception_handler(RequestValidationError)
    async def _page_invalid(request: Request, exc: RequestValidationError) -> Response:
        if request.url.path.startswith(NOT_PAGES):
            return await request_validation_exception_handler(request, exc)
        detail = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ())[1:])}: {e.get('msg')}" for e in exc.errors())
        return pages.render(request, "error.html", None, status_code=422, status=422, detail=detail)
