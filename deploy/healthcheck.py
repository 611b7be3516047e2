"""Container health check: exit 0 when the service in this container answers ``GET /health`` with 200.

Stdlib only (it runs inside the image). The port follows the services' own settings rule: the
service's ``<SERVICE>_PORT``, then ``BAOXUE_PORT``, then the service's default port.
``--path /ready`` checks readiness instead; ``--url`` checks a given address.
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.error
import urllib.request

DEFAULT_PORTS = {"registry": 8101, "enrollment": 8102, "casework": 8103, "notify": 8104}


def service_port(environ: dict[str, str]) -> int:
    """The port the service of this container listens on, from the environment."""
    service = environ.get("BAOXUE_SERVICE", "")
    if service not in DEFAULT_PORTS:
        raise ValueError("BAOXUE_SERVICE must be one of " + ", ".join(DEFAULT_PORTS))
    value = environ.get(f"{service.upper()}_PORT") or environ.get("BAOXUE_PORT")
    return int(value) if value else DEFAULT_PORTS[service]


def check(url: str, timeout: float) -> bool:
    """True when ``url`` answers 200 within ``timeout`` seconds."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (http to localhost)
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def main(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Baoxue container health check")
    parser.add_argument("--path", default="/health", choices=["/health", "/ready"])
    parser.add_argument("--url", help="check this URL instead of the local service")
    parser.add_argument("--timeout", type=float, default=3.0)
    args = parser.parse_args(argv)
    if args.url:
        url = args.url
    else:
        try:
            port = service_port(dict(os.environ) if environ is None else environ)
        except ValueError as exc:
            print(f"healthcheck: {exc}", file=sys.stderr)
            return 2
        url = f"http://127.0.0.1:{port}{args.path}"
    ok = check(url, args.timeout)
    if not ok:
        print(f"healthcheck: {url} is not healthy", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
