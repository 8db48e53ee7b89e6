"""Serve the dashboard page and its static files, with no build step.

The files are read once and served from memory under a content-hash prefix
(`/dashboard/static/<version>/...`): they can be cached for a year, and a new release is
picked up at once because the page itself is never cached and points at the new prefix.
Relative `import`s between the JavaScript modules stay under the same prefix.
Nothing here checks an API key: the page signs its own API calls.
"""

from __future__ import annotations

import gzip
import hashlib
import html
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from fastapi import Request, Response

from jobrelay.errors import NotFound
from jobrelay.route_table import api_router

PACKAGE_DIR = Path(__file__).parent
STATIC_DIR = PACKAGE_DIR / "static"
INDEX_TEMPLATE = PACKAGE_DIR / "index.html"

# Module scripts are refused unless served with a JavaScript type, so the types are explicit
# rather than left to the platform's mimetypes table.
CONTENT_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
}
COMPRESSIBLE = {".css", ".js", ".json", ".svg"}

CACHE_FOREVER = "public, max-age=31536000, immutable"
CACHE_REVALIDATE = "no-cache"

# The page holds an API key, so it only runs its own scripts and talks only to its own origin.
PAGE_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


@dataclass(frozen=True, slots=True)
class Asset:
    """One static file, ready to send."""

    body: bytes
    gzipped: bytes | None
    content_type: str
    etag: str


@dataclass(frozen=True, slots=True)
class Bundle:
    """Every static file and the version that names them all."""

    version: str
    assets: dict[str, Asset]


def _read_asset(path: Path) -> Asset:
    body = path.read_bytes()
    suffix = path.suffix.lower()
    gzipped = gzip.compress(body, mtime=0) if suffix in COMPRESSIBLE else None
    if gzipped is not None and len(gzipped) >= len(body):
        gzipped = None
    digest = hashlib.sha256(body).hexdigest()[:20]
    return Asset(
        body=body,
        gzipped=gzipped,
        content_type=CONTENT_TYPES.get(suffix, "application/octet-stream"),
        etag=f'"{digest}"',
    )


@lru_cache(maxsize=1)
def load_bundle() -> Bundle:
    """Read the static files once; the version hashes their names and contents."""
    assets: dict[str, Asset] = {}
    version_hash = hashlib.sha256()
    for path in sorted(STATIC_DIR.rglob("*")):
        if not path.is_file() or path.suffix.lower() not in CONTENT_TYPES:
            continue
        name = path.relative_to(STATIC_DIR).as_posix()
        asset = _read_asset(path)
        assets[name] = asset
        version_hash.update(name.encode())
        version_hash.update(asset.etag.encode())
    return Bundle(version=version_hash.hexdigest()[:12], assets=assets)


@lru_cache(maxsize=8)
def render_page(root_path: str) -> bytes:
    """The HTML shell, pointing at this release's static prefix under the app's root path."""
    bundle = load_bundle()
    template = INDEX_TEMPLATE.read_text(encoding="utf-8")
    return (
        template.replace("{{API_BASE}}", html.escape(root_path, quote=True))
        .replace("{{STATIC}}", html.escape(f"{root_path}/dashboard/static/{bundle.version}"))
        .encode()
    )


def _accepts_gzip(request: Request) -> bool:
    return "gzip" in request.headers.get("accept-encoding", "").lower()


def _etag_matches(request: Request, etag: str) -> bool:
    candidates = request.headers.get("if-none-match", "")
    return any(tag.strip().removeprefix("W/") == etag for tag in candidates.split(","))


router = api_router(include_in_schema=False)


@router.api_route("/dashboard", methods=["GET", "HEAD"])
@router.api_route("/dashboard/", methods=["GET", "HEAD"])
async def dashboard_page(request: Request) -> Response:
    """The single page; the hash part of the URL picks the view."""
    headers = {"Cache-Control": CACHE_REVALIDATE, **PAGE_SECURITY_HEADERS}
    body = render_page(request.scope.get("root_path", "").rstrip("/"))
    return Response(body, media_type="text/html; charset=utf-8", headers=headers)


@router.api_route("/dashboard/static/{version}/{asset_path:path}", methods=["GET", "HEAD"])
async def dashboard_asset(request: Request, version: str, asset_path: str) -> Response:
    """A static file. An old version prefix still gets today's file, but not for keeps."""
    bundle = load_bundle()
    asset = bundle.assets.get(asset_path)
    if asset is None:
        raise NotFound("No such dashboard file.")
    headers = {
        "Cache-Control": CACHE_FOREVER if version == bundle.version else CACHE_REVALIDATE,
        "ETag": asset.etag,
        "Vary": "Accept-Encoding",
        "X-Content-Type-Options": "nosniff",
    }
    if _etag_matches(request, asset.etag):
        return Response(status_code=304, headers=headers)
    if asset.gzipped is not None and _accepts_gzip(request):
        headers["Content-Encoding"] = "gzip"
        return Response(asset.gzipped, media_type=asset.content_type, headers=headers)
    return Response(asset.body, media_type=asset.content_type, headers=headers)
