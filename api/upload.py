"""Streamed multipart upload to a unique temp file with a size cap, and container sniffing by magic bytes."""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

log = logging.getLogger("api.upload")


class UploadError(Exception):
    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail


@dataclass
class Upload:
    path: Path | None = None
    size: int = 0
    filename: str | None = None
    fields: dict[str, str] = field(default_factory=dict)

    def discard(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)


async def receive_upload(request: Request, *, dest_dir: Path, max_bytes: int, file_field: str = "file",
                         max_field_bytes: int = 1024) -> Upload:
    """Parse the multipart body as it arrives; the file part goes to disk and stops at ``max_bytes`` (413)."""
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data" or b"boundary" not in params:
        raise UploadError(422, f"send the video as multipart/form-data with a '{file_field}' field "
                               f"(got Content-Type {request.headers.get('content-type')!r})")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes + 64 * 1024:
        raise UploadError(413, f"upload of {int(declared)} bytes is over the {max_bytes} byte limit (MAX_UPLOAD_MB)")
    dest_dir.mkdir(parents=True, exist_ok=True)
    up = Upload()
    state: dict[str, Any] = {"headers": {}, "hname": b"", "hvalue": b"", "name": None, "fh": None, "buf": None}

    def on_part_begin() -> None:
        state.update(headers={}, hname=b"", hvalue=b"", name=None, fh=None, buf=None)

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["hname"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["hvalue"] += data[start:end]

    def on_header_end() -> None:
        state["headers"][state["hname"].lower()] = state["hvalue"]
        state["hname"], state["hvalue"] = b"", b""

    def on_headers_finished() -> None:
        _, disp = parse_options_header(state["headers"].get(b"content-disposition", b""))
        name = disp.get(b"name", b"").decode("utf-8", "replace")
        state["name"] = name
        if name == file_field and up.path is None:
            fd, tmp = tempfile.mkstemp(prefix="upload-", suffix=".bin", dir=dest_dir)
            up.path = Path(tmp)
            up.filename = disp.get(b"filename", b"").decode("utf-8", "replace") or None
            state["fh"] = os.fdopen(fd, "wb")
        else:
            state["buf"] = bytearray()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if state["fh"] is not None:
            up.size += len(chunk)
            if up.size > max_bytes:
                raise UploadError(413, f"upload is over the {max_bytes} byte limit (MAX_UPLOAD_MB)")
            state["fh"].write(chunk)
        elif state["buf"] is not None:
            state["buf"] += chunk
            if len(state["buf"]) > max_field_bytes:
                raise UploadError(422, f"form field {state['name']!r} is over {max_field_bytes} bytes")

    def on_part_end() -> None:
        if state["fh"] is not None:
            state["fh"].close()
            state["fh"] = None
        elif state["buf"] is not None and state["name"]:
            up.fields[state["name"]] = state["buf"].decode("utf-8", "replace")

    parser = MultipartParser(params[b"boundary"], {
        "on_part_begin": on_part_begin, "on_header_field": on_header_field, "on_header_value": on_header_value,
        "on_header_end": on_header_end, "on_headers_finished": on_headers_finished, "on_part_data": on_part_data,
        "on_part_end": on_part_end,
    })
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except UploadError:
        if state["fh"] is not None:
            state["fh"].close()
        up.discard()
        raise
    except OSError as exc:  # the server cannot store the upload (disk full, temp dir gone): its paths stay in the log
        if state["fh"] is not None:
            state["fh"].close()
        up.discard()
        log.error("upload to %s failed: %s", dest_dir, exc)
        raise UploadError(503, "the server cannot store the upload right now; retry later") from exc
    except Exception as exc:  # malformed multipart
        if state["fh"] is not None:
            state["fh"].close()
        up.discard()
        log.info("malformed multipart body: %s", exc)
        raise UploadError(422, f"malformed multipart body ({type(exc).__name__}); send multipart/form-data with "
                               f"a '{file_field}' part") from exc
    if state["fh"] is not None:  # body ended mid-part
        state["fh"].close()
    return up


def sniff_container(head: bytes) -> str | None:
    """The container a file's first bytes announce (``.avi``, ``.mp4``...), or None if not a video container."""
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] in (b"AVI ", b"AVIX"):
        return ".avi"
    if len(head) >= 12 and head[4:8] == b"ftyp":
        brand = head[8:12]
        return ".mov" if brand == b"qt  " else ".mp4"
    if len(head) >= 8 and head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"):
        return ".mov"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return ".webm" if b"webm" in head[:64] else ".mkv"
    if len(head) >= 377 and head[0] == 0x47 and head[188] == 0x47 and head[376] == 0x47:
        return ".ts"
    if len(head) >= 197 and head[4] == 0x47 and head[196] == 0x47:
        return ".m2ts"
    if head[:4] in (b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3"):
        return ".mpg"
    if head[:3] == b"FLV":
        return ".flv"
    if head[:16] == bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c"):
        return ".wmv"
    if head[:4] == b"OggS":
        return ".ogv"
    return None


ACCEPTED = "AVI (RIFF), MP4/MOV (ftyp), MKV/WebM (EBML), MPEG-TS/PS, FLV, WMV/ASF, Ogg"
