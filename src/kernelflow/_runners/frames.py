"""Reading a worker's frames in bulk: as many whole frames as one ``read`` brings.

``Connection.recv_bytes`` costs two system calls per frame (its length, then its
bytes), and the pool's reading thread went back to ``select`` after every frame; on a
busy pool of quick tasks those calls were a good share of the parent's time per task.
Here the reading thread reads whatever the pipe holds and cuts it into frames.

The frames are the ones ``Connection.send_bytes`` writes (the workers still use it): a
4-byte big-endian signed length, or -1 and then an 8-byte length for frames of 2 GiB
and more, then the bytes.
"""

from __future__ import annotations

import os
import struct

_SHORT = struct.Struct("!i")
_LONG = struct.Struct("!Q")
# Bytes read at most per call, into one buffer kept for the reader's life: os.read(fd, n)
# would allocate n bytes each time, and past malloc's threshold (128 KiB) every such
# allocation maps and unmaps fresh pages.
CHUNK = 1 << 16


class FrameReader:
    """The frames arriving on one file descriptor, read only when it is readable."""

    __slots__ = ("fd", "_buffer", "_chunk", "_view")

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._buffer = bytearray()  # bytes read and not yet cut into frames
        self._chunk = bytearray(CHUNK)
        self._view = memoryview(self._chunk)

    def read(self) -> list[bytes] | None:
        """The whole frames that one read completes (maybe none: a frame still
        arriving); None once the other end has closed and nothing is left.

        Raises:
            OSError: the read failed (the other end is gone).
        """
        count = os.readv(self.fd, [self._chunk])
        if not count:
            return None
        buffer = self._buffer
        buffer += self._view[:count]
        frames = []
        position, size = 0, len(buffer)
        while size - position >= _SHORT.size:
            (length,) = _SHORT.unpack_from(buffer, position)
            start = position + _SHORT.size
            if length == -1:
                if size - start < _LONG.size:
                    break
                (length,) = _LONG.unpack_from(buffer, start)
                start += _LONG.size
            end = start + length
            if end > size:
                break
            frames.append(bytes(buffer[start:end]))
            position = end
        if position:
            del buffer[:position]
        return frames
