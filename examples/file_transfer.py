"""File transfer and huge transfers: moving bytes with Pyro, whole, streamed in chunks, and up.

Run it with ``python examples/file_transfer.py``. A server offers a 3 MB file (made in a
temporary directory). Look at the three download styles and one upload:

1. the whole file in one call: simple, but both sides hold it all in memory. With serpent,
   ``bytes`` arrive as a base64 dict: ``serpent.tobytes()`` turns them back into bytes;
2. a generator on the server: the client iterates over a *remote iterator* and receives one
   chunk per round trip, so memory stays flat however large the file is;
3. the marshal serializer (``proxy._pyroSerializer = "marshal"``) carries bytes as bytes,
   without base64 overhead: the fastest for big binary blobs;
4. uploading in chunks: one call per chunk with an offset.

Each transfer is checked with SHA-256. A daemon in a thread on 127.0.0.1. Exits 0 when every
step worked.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import time

import serpent

import pyro4compat as Pyro4

CHUNK = 256 * 1024


@Pyro4.expose
class FileServer:
    def __init__(self, directory: str) -> None:
        self.directory = directory

    def _path(self, name: str) -> str:
        return os.path.join(self.directory, os.path.basename(name))  # no escaping the directory

    def read_all(self, name: str) -> bytes:
        with open(self._path(name), "rb") as f:
            return f.read()

    def read_chunks(self, name: str):
        with open(self._path(name), "rb") as f:
            while True:
                chunk = f.read(CHUNK)
                if not chunk:
                    return
                yield chunk

    def write_chunk(self, name: str, offset: int, chunk) -> int:
        if isinstance(chunk, dict):
            chunk = serpent.tobytes(chunk)
        with open(self._path(name), "r+b" if offset else "wb") as f:
            f.seek(offset)
            f.write(chunk)
        return offset + len(chunk)

    def checksum(self, name: str) -> str:
        with open(self._path(name), "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()


def timed(label: str, digest: str, fetch) -> None:
    started = time.monotonic()
    data = fetch()
    print("%-44s %d bytes in %.2f s" % (label, len(data), time.monotonic() - started))
    assert hashlib.sha256(data).hexdigest() == digest, label


def main() -> int:
    with tempfile.TemporaryDirectory() as directory, Pyro4.Daemon(host="127.0.0.1") as daemon:
        original = os.urandom(3 * 1024 * 1024)
        with open(os.path.join(directory, "big.bin"), "wb") as f:
            f.write(original)
        digest = hashlib.sha256(original).hexdigest()
        uri = daemon.register(FileServer(directory))
        threading.Thread(target=daemon.requestLoop, daemon=True).start()

        with Pyro4.Proxy(uri) as files:
            raw = files.read_all("big.bin")
            print("serpent delivers bytes as:", type(raw).__name__, sorted(raw))
            timed("1. whole file, serpent + serpent.tobytes():", digest,
                  lambda: serpent.tobytes(files.read_all("big.bin")))
            timed("2. streamed in %d KB chunks:" % (CHUNK // 1024), digest,
                  lambda: b"".join(serpent.tobytes(c) for c in files.read_chunks("big.bin")))

            with Pyro4.Proxy(uri) as fast:
                fast._pyroSerializer = "marshal"
                timed("3. whole file, marshal serializer:", digest, lambda: fast.read_all("big.bin"))

                offset = 0
                for start in range(0, len(original), CHUNK):
                    offset = fast.write_chunk("copy.bin", offset, original[start:start + CHUNK])
            print("4. uploaded %d bytes in chunks; server checksum matches: %s"
                  % (offset, files.checksum("copy.bin") == digest))
            assert offset == len(original) and files.checksum("copy.bin") == digest
        daemon.shutdown()
    print("file transfer example done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
