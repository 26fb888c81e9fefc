"""Image bytes: PUT and GET /v2/images/{id}/file, streamed both ways."""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse

from novalet import exceptions
from novalet.api.handler import ApiRequest, Reply
from novalet.api.image import patch

OCTET_STREAM = "application/octet-stream"


class UploadInterrupted(exceptions.Invalid):
    msg_fmt = "The client went away before the image data was complete."


async def upload(req: ApiRequest) -> Reply:
    """Glance answers a completed upload with 204 and no body."""
    patch.check_media_type(req.raw.headers.get("content-type"), OCTET_STREAM)
    await req.app.images.upload(req.ctx, req.path["image_id"], _body(req.raw))
    return Reply(None, 204)


async def _body(raw: Request) -> AsyncIterator[bytes]:
    try:
        async for chunk in raw.stream():
            yield chunk
    except ClientDisconnect:
        raise UploadInterrupted() from None


async def download(req: ApiRequest) -> Response:
    """200 with the bytes, Content-MD5 and Content-Length; 204 when there is no data."""
    data = await req.app.images.open_data(req.ctx, req.path["image_id"])
    if data is None:
        return Response(status_code=204)
    headers = {}
    if data.checksum:
        headers["Content-MD5"] = data.checksum
    if data.size is not None:
        headers["Content-Length"] = str(data.size)
    return StreamingResponse(data.chunks, headers=headers, media_type=OCTET_STREAM)
