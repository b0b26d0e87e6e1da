"""Streamed multipart upload to a unique temp file with a size cap, and container sniffing by magic bytes.

Bounds, all enforced while the body streams in (nothing is buffered beyond them):

* the WHOLE body: ``max_bytes`` for the file plus :data:`OVERHEAD_BYTES` for boundaries, part headers and form
  fields (413);
* at most :data:`MAX_FIELDS` non-file form fields of at most ``max_field_bytes`` each (413 / 422), and part
  headers of at most :data:`MAX_PART_HEADER_BYTES`;
* at most MAX_CONCURRENT_UPLOADS bodies being received at once (:class:`UploadGate`): beyond it 503 with
  Retry-After before a byte of the body is read.

The temp file is removed in every exit path (413, 422, client disconnect, a stalled body's 408, cancellation);
refusals that leave body bytes unread carry ``Connection: close`` so the server drops the connection.

Why not FastAPI's own ``File()``/``UploadFile`` parsing (0.165 has ``max_body_size`` and ``form_limits``): a route
with form parameters has its whole body read and parsed before any dependency or the route itself runs, so
:class:`UploadGate` could not refuse an upload before its body is read; ``max_body_size`` is fixed when the route
is declared (at import), while the cap here is MAX_UPLOAD_MB from the Settings the app was built with; and its
413 neither names the setting nor closes the connection on the unread rest of the body. The file part would also
go to Starlette's spooled temp file (memory, then the system temp dir) instead of a unique file under VAR_DIR.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

MAX_FIELDS = 16  # non-file form fields per upload
MAX_PART_HEADER_BYTES = 8 * 1024  # the headers of one part
OVERHEAD_BYTES = 64 * 1024  # boundaries, part headers and form fields on top of the file itself
CLOSE = {"Connection": "close"}

log = logging.getLogger("api.upload")


class UploadError(Exception):
    def __init__(self, status_code: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.headers = headers


class UploadGate:
    """Counts uploads being received; :meth:`slot` refuses (503, Retry-After) beyond ``limit``.

    Used from the event loop only (async routes), so a plain counter is enough."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0
        self.refused = 0  # uploads answered 503 because the gate was full

    @contextmanager
    def slot(self) -> Iterator[None]:
        if self.active >= self.limit:
            self.refused += 1
            raise UploadError(503, f"{self.active} uploads are already being received (MAX_CONCURRENT_UPLOADS="
                                   f"{self.limit}); retry in a few seconds", headers={"Retry-After": "5", **CLOSE})
        self.active += 1
        try:
            yield
        finally:
            self.active -= 1


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
                         max_field_bytes: int = 1024, limit_name: str = "MAX_UPLOAD_MB", what: str = "the video") -> Upload:
    """Parse the multipart body as it arrives; the file part goes to disk and stops at ``max_bytes`` (413).

    ``limit_name`` (the setting behind ``max_bytes``) and ``what`` (the file) are named in error messages."""
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data" or b"boundary" not in params:
        raise UploadError(422, f"send {what} as multipart/form-data with a '{file_field}' field "
                               f"(got Content-Type {request.headers.get('content-type')!r})", headers=CLOSE)
    body_cap = max_bytes + OVERHEAD_BYTES
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > body_cap:
        raise UploadError(413, f"upload of {int(declared)} bytes is over the {max_bytes} byte limit ({limit_name})",
                          headers=CLOSE)
    dest_dir.mkdir(parents=True, exist_ok=True)
    up = Upload()
    state: dict[str, Any] = {"headers": {}, "hname": b"", "hvalue": b"", "hbytes": 0, "name": None, "fh": None,
                             "buf": None, "fields": 0}

    def on_part_begin() -> None:
        state.update(headers={}, hname=b"", hvalue=b"", hbytes=0, name=None, fh=None, buf=None)

    def _header_bytes(n: int) -> None:
        state["hbytes"] += n
        if state["hbytes"] > MAX_PART_HEADER_BYTES:
            raise UploadError(413, f"a multipart part's headers are over {MAX_PART_HEADER_BYTES} bytes", headers=CLOSE)

    def on_header_field(data: bytes, start: int, end: int) -> None:
        _header_bytes(end - start)
        state["hname"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        _header_bytes(end - start)
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
            state["fields"] += 1
            if state["fields"] > MAX_FIELDS:
                raise UploadError(413, f"more than {MAX_FIELDS} form fields; send the '{file_field}' part and at "
                                       "most a few small fields (model, top_k, thumbnails)", headers=CLOSE)
            state["buf"] = bytearray()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if state["fh"] is not None:
            up.size += len(chunk)
            if up.size > max_bytes:
                raise UploadError(413, f"upload is over the {max_bytes} byte limit ({limit_name})", headers=CLOSE)
            state["fh"].write(chunk)
        elif state["buf"] is not None:
            state["buf"] += chunk
            if len(state["buf"]) > max_field_bytes:
                raise UploadError(422, f"form field {state['name']!r} is over {max_field_bytes} bytes", headers=CLOSE)

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
    received = 0
    ok = False
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > body_cap:
                raise UploadError(413, f"request body is over {body_cap} bytes: the {max_bytes} byte file limit "
                                       f"({limit_name}) plus {OVERHEAD_BYTES} for form fields", headers=CLOSE)
            parser.write(chunk)
        parser.finalize()
        ok = True
    except UploadError:
        raise
    except ClientDisconnect:
        raise UploadError(400, "the client disconnected before the upload finished") from None
    except OSError as exc:  # the server cannot store the upload (disk full, temp dir gone): its paths stay in the log
        log.error("upload to %s failed: %s", dest_dir, exc)
        raise UploadError(503, "the server cannot store the upload right now; retry later", headers=CLOSE) from exc
    except Exception as exc:  # malformed multipart
        log.info("malformed multipart body: %s", exc)
        raise UploadError(422, f"malformed multipart body ({type(exc).__name__}); send multipart/form-data with a "
                               f"'{file_field}' part", headers=CLOSE) from exc
    finally:
        if state["fh"] is not None:  # body ended (or was abandoned) mid-part
            state["fh"].close()
            state["fh"] = None
        if not ok:  # every failure, and cancellation (BaseException), leaves no temp file
            up.discard()
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
