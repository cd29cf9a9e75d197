"""The request guard of ``stylize serve``: Host, token, cross-site and size checked before a handler sees a request.

A loopback server answers only to its own Host names (a web page whose name
an attacker points at 127.0.0.1 is refused: DNS rebinding); with a token,
the token must come with every request (cookie, ``Authorization: Bearer``,
or ``?token=`` once, which sets the cookie). Every POST carries the page's
per-server CSRF value and no foreign ``Origin`` or ``Sec-Fetch-Site``.
Bodies are refused from their declared length before they are read. Every
response carries the security headers, and every error is one JSON line.
"""
from __future__ import annotations

import asyncio
import hmac
import logging

from aiohttp import web

from .work import Refused

log = logging.getLogger(__name__)

TOKEN_COOKIE = "stylize_token"
CSRF_HEADER = "X-Stylize-CSRF"
#: Multipart framing around an upload's bytes (boundaries, part headers).
MULTIPART_SLACK = 16 * 1024
SAFE_METHODS = frozenset({"GET", "HEAD"})

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'")


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


class Guard:
    """``WebApp``'s middlewares and response headers (a mixin: it reads ``config``, ``csrf``, ``port``, ``clean``)."""

    @staticmethod
    async def _headers(request: web.Request, response: web.StreamResponse) -> None:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        if request.path.startswith("/api/") or request.path == "/":
            response.headers.setdefault("Cache-Control", "no-store")

    @web.middleware
    async def _errors(self, request: web.Request, handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except Refused as e:
            return _error(e.status, self.clean(e.message))
        except web.HTTPRequestEntityTooLarge:
            return _error(413, f"request body too large: this server takes at most "
                               f"{self.config.max_json_bytes:,} bytes here")
        except web.HTTPException as e:
            if e.status < 400:
                raise
            return _error(e.status, {404: "not found", 405: f"method {request.method} not allowed here"}.get(
                e.status, e.reason))
        except (asyncio.CancelledError, ConnectionResetError):
            raise
        except Exception as e:  # a bug: logged here, one line without a traceback or a path for the client
            log.exception("%s %s failed", request.method, request.path[:200])
            return _error(500, self.clean(f"internal error, please report it: {type(e).__name__}"))

    @web.middleware
    async def _guard(self, request: web.Request, handler) -> web.StreamResponse:
        """Host, token, cross-site and body-size checks, before any handler sees the request."""
        host = (request.host or "").lower()
        if self.config.loopback and host not in self._hosts():
            raise Refused(403, f"unexpected Host {host[:80]!r}: this server answers only as "
                               f"{self._hosts()[0]} (a guard against DNS rebinding)")
        set_cookie = False
        if self.config.token:
            given = _bearer(request) or request.cookies.get(TOKEN_COOKIE) or request.query.get("token", "")
            if not given or not hmac.compare_digest(given.encode(), self.config.token.encode()):
                raise Refused(401, "this server needs its token: open the URL stylize serve printed "
                                   "(it ends in ?token=...)")
            set_cookie = request.cookies.get(TOKEN_COOKIE) != self.config.token
        if request.method not in SAFE_METHODS:
            if not hmac.compare_digest(request.headers.get(CSRF_HEADER, "").encode(), self.csrf.encode()):
                raise Refused(403, "cross-site request refused: state-changing requests come from the page "
                                   f"itself (with its {CSRF_HEADER} header)")
            origin = request.headers.get("Origin")
            if origin is not None and origin != f"{request.scheme}://{request.host}":
                raise Refused(403, f"cross-site request refused: Origin {origin[:80]!r} is not this server")
            if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
                raise Refused(403, "cross-site request refused (Sec-Fetch-Site)")
        limit = self._body_limit(request)
        if request.content_length is not None and request.content_length > limit:
            raise Refused(413, f"request body too large: {request.content_length:,} bytes, this server takes "
                               f"at most {limit:,} here")
        response = await handler(request)
        if set_cookie and not response.prepared:
            response.set_cookie(TOKEN_COOKIE, self.config.token, httponly=True, samesite="Strict", path="/")
        return response

    def _body_limit(self, request: web.Request) -> int:
        if request.method == "POST" and request.path == "/api/uploads":
            return self.config.max_upload_bytes + MULTIPART_SLACK
        return self.config.max_json_bytes

    def _hosts(self) -> tuple[str, ...]:
        """The Host headers a loopback server answers to: its address or ``localhost``, with its port."""
        names = ["127.0.0.1", "localhost", "[::1]"]
        host = self.config.host.strip("[]").lower()
        if host not in ("127.0.0.1", "localhost", "::1"):
            names.insert(0, f"[{host}]" if ":" in host else host)
        hosts = [f"{name}:{self.port}" for name in names]
        return tuple(hosts + (names if self.port == 80 else []))


def _bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else ""
