"""Accept / Content-Type negotiation as Elasticsearch's RestCompatibleVersionHelper does it.

Clients send ``application/vnd.elasticsearch+json; compatible-with=8`` (or 9). We accept the current
and the previous major, plain JSON, and echo the vendor type back on success.
"""

from __future__ import annotations

from dataclasses import dataclass

from keyplane.http.errors import EsError, RawError

CURRENT_MAJOR = 9
VENDOR_JSON = "application/vnd.elasticsearch+json"
# Types whose body we can read; everything else is refused with 406 as Elasticsearch does.
_JSON_TYPES = {"application/json", VENDOR_JSON, "application/x-ndjson", "application/vnd.elasticsearch+x-ndjson"}


@dataclass(frozen=True)
class MediaType:
    mime: str
    compatible_with: int | None


def _parse_one(value: str) -> MediaType:
    parts = [p.strip() for p in value.split(";")]
    mime = parts[0].lower()
    version = None
    for param in parts[1:]:
        name, _, val = param.partition("=")
        if name.strip().lower() == "compatible-with":
            val = val.strip()
            version = int(val) if val.isdigit() else -1
    return MediaType(mime, version)


def _accept_entry(header: str) -> MediaType | None:
    """The Accept entry that matters: the vendor one if present, else the first."""
    entries = [_parse_one(e) for e in header.split(",") if e.strip()]
    for entry in entries:
        if entry.mime.startswith("application/vnd.elasticsearch"):
            return entry
    return entries[0] if entries else None


def _check_version(kind: str, media: MediaType | None, raw: str) -> int | None:
    if media is None or media.compatible_with is None:
        return None
    if media.compatible_with not in (CURRENT_MAJOR, CURRENT_MAJOR - 1):
        raise EsError(
            400,
            "media_type_header_exception",
            f"{kind} version must be either version {CURRENT_MAJOR} or {CURRENT_MAJOR - 1}, "
            f"but found {media.compatible_with}. {kind}={raw}",
        )
    return media.compatible_with


# Clients send the same few header values on every request: their answers, once worked out.
_NEGOTIATED: dict[tuple[str | None, str | None, bool], int | None] = {}


def negotiate(accept: str | None, content_type: str | None, has_body: bool) -> int | None:
    """Validate the headers; return the compatible-with version to echo, or None for plain JSON."""
    if accept is None and (content_type is None or not has_body):
        return None
    key = (accept, content_type, has_body)
    try:
        return _NEGOTIATED[key]
    except KeyError:
        pass
    version = _negotiate(accept, content_type, has_body)  # raises for headers it refuses: never kept
    if len(_NEGOTIATED) >= 1_000:
        _NEGOTIATED.clear()
    _NEGOTIATED[key] = version
    return version


def _negotiate(accept: str | None, content_type: str | None, has_body: bool) -> int | None:
    accept_media = _accept_entry(accept) if accept else None
    ctype_media = _parse_one(content_type) if (content_type and has_body) else None
    if ctype_media is not None and ctype_media.mime not in _JSON_TYPES:
        raise RawError(406, {"error": f"Content-Type header [{content_type}] is not supported", "status": 406})
    accept_version = _check_version("Accept", accept_media, accept or "")
    ctype_version = _check_version("Content-Type", ctype_media, content_type or "")
    if has_body and ctype_media is not None and (accept_version is not None or ctype_version is not None):
        if accept_version is None or ctype_version is None:
            raise EsError(
                400,
                "media_type_header_exception",
                "A compatible version is required on both Content-Type and Accept headers if either one "
                f"has requested a compatible version. Accept={accept}, Content-Type={content_type}",
            )
        if accept_version != ctype_version:
            raise EsError(
                400,
                "media_type_header_exception",
                "A compatible version is required on both Content-Type and Accept headers if either one "
                "has requested a compatible version and the compatible versions must match. "
                f"Accept={accept}, Content-Type={content_type}",
            )
    return accept_version if accept_version is not None else ctype_version


def response_content_type(version: int | None) -> str:
    if version is None:
        return "application/json"
    return f"{VENDOR_JSON};compatible-with={version}"
