"""Request and response bodies and their checksums: FNV-1a as the test programs compute
it, gigabyte bodies whose hash is cheap (SparseBody), and a streaming check of
vigil-echo's /bytes/{n} pattern (PatternChecker)."""

FNV_OFFSET = 0xcbf29ce484222325
FNV_PRIME = 0x100000001b3
_MASK64 = (1 << 64) - 1


def fnv1a64_hex(data, h=FNV_OFFSET):
    """FNV-1a 64-bit of `data` as 16 lowercase hex digits (pure Python: small bodies)."""
    for b in data:
        h = ((h ^ b) * FNV_PRIME) & _MASK64
    return f"{h:016x}"


class SparseBody:
    """A body of `size` bytes that are zero except for one marker byte every `stride`
    bytes. Its FNV-1a costs O(markers) (a run of n zero bytes multiplies the hash by
    prime^n), so gigabyte bodies can be checked, and because the markers vary and do not
    fall on power-of-two offsets, a lost, repeated or reordered block changes the hash."""

    def __init__(self, size, stride=1_000_003):
        self.size = size
        self.stride = stride

    def _markers(self, begin, end):
        first = max(0, (begin - self.stride // 2 + self.stride - 1) // self.stride)
        k = first
        while True:
            pos = k * self.stride + self.stride // 2
            if pos >= end:
                return
            if pos >= begin:
                yield pos, k % 255 + 1
            k += 1

    def fnv1a_hex(self):
        h, at = FNV_OFFSET, 0
        for pos, value in self._markers(0, self.size):
            h = (h * pow(FNV_PRIME, pos - at, 1 << 64)) & _MASK64
            h = ((h ^ value) * FNV_PRIME) & _MASK64
            at = pos + 1
        h = (h * pow(FNV_PRIME, self.size - at, 1 << 64)) & _MASK64
        return f"{h:016x}"

    def chunks(self, chunk_size=1 << 20):
        buf = bytearray(chunk_size)
        for offset in range(0, self.size, chunk_size):
            n = min(chunk_size, self.size - offset)
            marks = list(self._markers(offset, offset + n))
            for pos, value in marks:
                buf[pos - offset] = value
            yield bytes(buf[:n])
            for pos, _ in marks:
                buf[pos - offset] = 0

    def bytes(self):
        return b"".join(self.chunks())


class PatternChecker:
    """Checks a streamed body against vigil-echo's /bytes/{n} pattern: byte i is
    'a' + i % 26. Keeps a count and the offset of the first wrong byte."""

    _ALPHABET = bytes(range(ord("a"), ord("a") + 26))

    def __init__(self):
        self.count = 0
        self.first_mismatch = None
        self._ref = self._ALPHABET * ((1 << 20) // 26 + 3)

    def __call__(self, chunk):
        view = memoryview(chunk)
        while len(view):
            n = min(len(view), len(self._ref) - 26)
            start = self.count % 26
            if self.first_mismatch is None and view[:n] != self._ref[start:start + n]:
                expected = self._ref[start:start + n]
                i = next(j for j in range(n) if view[j] != expected[j])
                self.first_mismatch = self.count + i
            self.count += n
            view = view[n:]
