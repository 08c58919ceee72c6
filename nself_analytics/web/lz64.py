"""lz-string's ``decompressFromBase64`` (PostHog's legacy ``compression=lz64``), bounded.

Written here rather than taken from PyPI's ``lzstring``: that package decompresses without any bound on the output
(an LZW stream can grow quadratically: a 500 KB body could expand to gigabytes) and reads one bit per Python
call; this one stops at ``limit`` characters and reads a code at a time. ``lzstring`` stays a test dependency: its
compressor makes the tests' bodies, so the two implementations are checked against each other.
"""

from __future__ import annotations

__all__ = ["LzError", "decompress_base64"]

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_BITS = {**{char: format(index, "06b") for index, char in enumerate(_ALPHABET)}, "=": "000000"}


class LzError(ValueError):
    """The text is no lz-string stream, or it decompresses past the limit."""


class _Reader:
    """The stream's bits, most significant first per base64 character; a code of n bits is read least
    significant bit first (lz-string's order), and past the end reads zeros."""

    __slots__ = ("bits", "position")

    def __init__(self, text: str) -> None:
        try:
            self.bits = "".join([_BITS[char] for char in text])
        except KeyError:
            raise LzError("not base64 text") from None
        self.position = 0

    def read(self, count: int) -> int:
        chunk = self.bits[self.position:self.position + count]
        self.position += count
        return int(chunk[::-1], 2) if chunk else 0

    @property
    def exhausted(self) -> bool:
        return self.position >= len(self.bits)


def _from_utf16(text: str) -> str:
    """JavaScript strings are UTF-16 code units: a character past U+FFFF arrives as two surrogates."""
    try:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le")
    except UnicodeDecodeError:
        raise LzError("an unpaired surrogate") from None


def decompress_base64(text: str, limit: int) -> str:
    """The text ``text`` (lz-string compressed, then base64) decompresses to; LzError when it is not such a
    stream or its output would exceed ``limit`` characters."""
    if not text:
        raise LzError("empty")
    reader = _Reader(text.strip())
    first = reader.read(2)
    if first == 2:
        return ""
    if first not in (0, 1):
        raise LzError("bad header")
    char = chr(reader.read(8 if first == 0 else 16))
    dictionary: list[str] = ["", "", "", char]
    word = char
    out = [char]
    size = 1
    enlarge_in, num_bits = 4, 3
    while True:
        if reader.exhausted:
            raise LzError("truncated stream")
        code = reader.read(num_bits)
        if code == 2:
            return _from_utf16("".join(out))
        if code in (0, 1):
            dictionary.append(chr(reader.read(8 if code == 0 else 16)))
            code = len(dictionary) - 1
            enlarge_in -= 1
            if enlarge_in == 0:
                enlarge_in, num_bits = 1 << num_bits, num_bits + 1
        if code < len(dictionary):
            entry = dictionary[code]
        elif code == len(dictionary):
            entry = word + word[0]
        else:
            raise LzError("bad code")
        size += len(entry)
        if size > limit:
            raise LzError(f"decompresses past {limit} characters")
        out.append(entry)
        dictionary.append(word + entry[0])
        enlarge_in -= 1
        word = entry
        if enlarge_in == 0:
            enlarge_in, num_bits = 1 << num_bits, num_bits + 1
