"""Uploads to S3 with several parts in flight at once.

One S3 connection carries about 50-100 MB/s; s3fs's file object uploads the parts of a multipart
upload one after the other (``S3File._upload_chunk``), so a large artifact is written at that rate.
:class:`ConcurrentUpload` is a write-only file that sends each part as soon as it is full, on s3fs's
own event loop and client (same credentials, timeouts, retries and extra arguments), with at most
``concurrency`` parts in flight: memory stays within ``(concurrency + 1) * part size``. A slot frees
as soon as any part is done, so one slow part does not hold the others back. The object
appears only when :meth:`close` completes the upload; :meth:`discard` aborts it. An object smaller
than one part is a single ``PutObject`` at :meth:`close`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from concurrent.futures import Future

#: The first parts' size; doubled every 1,000 parts so an object stays within S3's 10,000 parts.
PART_BYTES = 16 * 1024 * 1024
CONCURRENCY = 8


class ConcurrentUpload:
    """A write-only file uploading ``bucket/key`` through the s3fs filesystem ``fs``.

    :param fs: an ``s3fs.S3FileSystem`` (its loop, client and request arguments are used).
    :param path: ``bucket/key`` as s3fs names it.
    :param part_bytes: size of the first parts (S3's minimum is 5 MiB, except for the last part);
        :data:`PART_BYTES` by default.
    :param concurrency: parts uploading at once at most (:data:`CONCURRENCY` by default).
    """

    def __init__(
        self, fs: Any, path: str, *, part_bytes: int | None = None, concurrency: int | None = None
    ) -> None:
        self._fs = fs
        self._bucket, self._key, _ = fs.split_path(path)
        self._part_bytes = part_bytes or PART_BYTES
        self._concurrency = concurrency or CONCURRENCY
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._in_flight: dict[Future[Any], int] = {}  # part number of each request in flight
        self._parts: list[dict[str, Any]] = []
        self.closed = False

    # -- file API used by the store's writer ----------------------------------------------------

    def write(self, data: Any) -> int:
        if self.closed:
            raise ValueError(f"The upload of s3://{self._bucket}/{self._key} is closed")
        view = memoryview(data).cast("B")
        self._buffer += view
        while len(self._buffer) >= (size := self._part_size()):
            with memoryview(self._buffer) as buffered:
                part = bytes(buffered[:size])
            del self._buffer[:size]
            self._send(part)
        return view.nbytes

    def close(self) -> None:
        """Send what is left and complete the upload (the object appears now)."""
        if self.closed:
            return
        if self._upload_id is None:
            self._call("put_object", Body=bytes(self._buffer))
        else:
            if self._buffer:
                self._send(bytes(self._buffer))
            self._wait(0)
            self._call(
                "complete_multipart_upload",
                UploadId=self._upload_id,
                MultipartUpload={"Parts": sorted(self._parts, key=lambda p: p["PartNumber"])},
            )
        self._buffer = bytearray()
        self.closed = True

    def discard(self) -> None:
        """Abort: parts in flight are waited for (their errors ignored), the upload is aborted."""
        self.closed = True
        self._buffer = bytearray()
        for future in self._in_flight:
            future.cancel()
        for future in self._in_flight:
            with contextlib.suppress(BaseException):  # aborting anyway
                future.result()
        self._in_flight.clear()
        if self._upload_id is not None:
            self._call("abort_multipart_upload", UploadId=self._upload_id)

    # -- internals ------------------------------------------------------------------------------

    def _part_size(self) -> int:
        number = len(self._parts) + len(self._in_flight)
        return self._part_bytes << min(number // 1000, 8)

    def _send(self, part: bytes) -> None:
        if self._upload_id is None:
            self._upload_id = self._call("create_multipart_upload")["UploadId"]
        number = len(self._parts) + len(self._in_flight) + 1
        coroutine = self._fs._call_s3(
            "upload_part",
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=part,
        )
        self._in_flight[asyncio.run_coroutine_threadsafe(coroutine, self._fs.loop)] = number
        self._wait(self._concurrency - 1)

    def _wait(self, keep: int) -> None:
        """Wait until at most ``keep`` parts are in flight, taking whichever finish first; a failed
        part raises."""
        while len(self._in_flight) > keep:
            done, _ = concurrent.futures.wait(self._in_flight, return_when=concurrent.futures.FIRST_COMPLETED)
            for future in done:
                number = self._in_flight.pop(future)
                self._parts.append({"PartNumber": number, "ETag": future.result()["ETag"]})

    def _call(self, method: str, **kwargs: Any) -> Any:
        return self._fs.call_s3(method, Bucket=self._bucket, Key=self._key, **kwargs)
