"""The byte checks an XML-RPC request passes before any parser sees it.

Each check reads the raw body once, in C (``bytes.count``, ``bytes.find``,
compiled regular expressions), and builds nothing per element, so a hostile
body is refused at the cost of reading it:

- the encoding: UTF-8, or one of :data:`SAFE_ENCODINGS` named in an XML
  declaration that closes within the first :data:`DECLARATION_WINDOW` bytes;
  all are ASCII-compatible, which is what makes the byte scans below sound;
- no ``<!`` other than a comment or a CDATA section: no DTD, so no entity
  declaration, internal or external;
- at most ``max_elements`` elements: every element has a start tag, so the
  number of ``<`` minus the number of ``</`` can only over-count them;
- no attributes: when the body holds many ``=`` signs, a scan of its tags
  refuses any attribute before parsing (with few, the parsed tree is checked,
  which costs little); namespace declarations (``xmlns:ex="..."``) are not
  attributes and are allowed.
"""

from __future__ import annotations

import codecs
import re

from ..errors import INVALID_REQUEST, NOT_WELL_FORMED, RPCError

__all__ = [
    "ATTRIBUTE_SCAN_THRESHOLD",
    "DECLARATION_WINDOW",
    "SAFE_ENCODINGS",
    "check_body",
    "has_attribute",
    "plain_sections",
]

#: Encodings a request may declare (Python's canonical codec names;
#: ``codecs.lookup`` maps the aliases). All are ASCII-compatible.
SAFE_ENCODINGS = frozenset({"utf-8", "ascii", "iso8859-1", "iso8859-15", "cp1252"})
#: An XML declaration must close within this many bytes of the start.
DECLARATION_WINDOW = 1024
#: With at most this many ``=`` in a body, attributes are looked for in the
#: parsed tree (they cannot cost much memory); with more, in the bytes first.
ATTRIBUTE_SCAN_THRESHOLD = 10_000

_UTF8_BOM = b"\xef\xbb\xbf"
_WIDE_BOMS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")
_ENCODING_RE = re.compile(rb"\sencoding\s*=\s*[\"']([A-Za-z0-9._-]{1,40})[\"']")
#: ``<!`` that opens anything but a comment or a CDATA section: DOCTYPE,
#: ENTITY, ELEMENT, ATTLIST and the like, which only a DTD may hold.
_DECLARATION_RE = re.compile(rb"<!(?!--|\[CDATA\[)")
#: A comment, a CDATA section, or a start tag with white space after its
#: name (group 1 is then what follows the white space).
_TAG_OR_SECTION_RE = re.compile(rb"<!--|<!\[CDATA\[|<[^\s<>!?/][^\s<>/]*\s+([^\s<>/])")
#: One attribute (or namespace declaration) inside a start tag.
_SECTION_RE = re.compile(rb"<!--|<!\[CDATA\[|<\?")
_ATTRIBUTE_RE = re.compile(rb"\s*([^\s<>/=]+)\s*=\s*(?:\"[^\"<]*\"|'[^'<]*')")

_BAD_ENCODING = "not well-formed: unsupported document encoding; send UTF-8"


def check_body(body: bytes, max_elements: int) -> tuple[bytes, str]:
    """Run the byte checks; return the body (without a UTF-8 BOM) and its encoding.

    :raises RPCError: -32700 for an unsupported encoding, an XML declaration
        that does not close within :data:`DECLARATION_WINDOW` bytes, or a
        DTD; -32600 for more than ``max_elements`` elements or an attribute.
    """
    if body.startswith(_UTF8_BOM):
        body = body[3:]
    elif body.startswith(_WIDE_BOMS) or body.find(0, 0, 4) >= 0:
        raise RPCError(NOT_WELL_FORMED, _BAD_ENCODING)
    encoding = "utf-8"
    if body.startswith(b"<?xml"):
        end = body.find(b"?>", 0, DECLARATION_WINDOW)
        if end < 0:
            raise RPCError(
                NOT_WELL_FORMED,
                f"not well-formed: the XML declaration must close within the first "
                f"{DECLARATION_WINDOW} bytes",
            )
        # Most declarations name no encoding: a plain search, then the pattern.
        match = body.find(b"encoding", 5, end) >= 0 and _ENCODING_RE.search(body, 5, end)
        if match:
            try:
                encoding = codecs.lookup(match.group(1).decode("ascii")).name
            except LookupError:
                encoding = ""
            if encoding not in SAFE_ENCODINGS:
                raise RPCError(NOT_WELL_FORMED, _BAD_ENCODING)
    # "!" is rare in a body and found with memchr; "<!" alone would be a
    # slower two-byte search through every "<".
    if b"!" in body and _DECLARATION_RE.search(body):
        raise RPCError(
            NOT_WELL_FORMED, "not well-formed: DTDs and entity declarations are not allowed"
        )
    # A body holds no more "<" (or "=") than bytes: shorter ones skip the counts,
    # and only bodies near the cap pay for the second count.
    size = len(body)
    if size > max_elements:
        tags = body.count(b"<")
        if tags > max_elements and tags - body.count(b"</") > max_elements:
            raise RPCError(
                INVALID_REQUEST, f"the request holds more than {max_elements} elements"
            )
    many_equals = size > ATTRIBUTE_SCAN_THRESHOLD and body.count(b"=") > ATTRIBUTE_SCAN_THRESHOLD
    if many_equals and has_attribute(body):
        raise RPCError(INVALID_REQUEST, ATTRIBUTES_REFUSED)
    return body, encoding


ATTRIBUTES_REFUSED = "XML-RPC elements carry no attributes"


def has_attribute(body: bytes) -> bool:
    """Whether a start tag in ``body`` holds an attribute (not a namespace declaration).

    Comments and CDATA sections are skipped whole, so text in them is never
    mistaken for a tag. Linear in the body's size: each match moves on.
    """
    pos = 0
    search = _TAG_OR_SECTION_RE.search
    while match := search(body, pos):
        token = match.group()
        if token == b"<!--" or token == b"<![CDATA[":
            close = b"-->" if token == b"<!--" else b"]]>"
            end = body.find(close, match.end())
            if end < 0:
                return False  # never closed: the parser refuses it
            pos = end + len(close)
            continue
        # A start tag with something after its name: read its attributes.
        pos = match.start(1)
        while attribute := _ATTRIBUTE_RE.match(body, pos):
            name = attribute.group(1)
            if name != b"xmlns" and not name.startswith(b"xmlns:"):
                return True
            pos = attribute.end()
        if body[pos : pos + 1] not in (b">", b"/") and not body[pos : pos + 1].isspace():
            return True  # not an attribute, not the tag's end: refuse it anyway
    return False


def plain_sections(body: bytes) -> bytes:
    """``body`` with comments and processing instructions cut and CDATA sections as text.

    The parser drops blank text between elements, and its rule for what is
    blank looks at the next markup: white space next to a comment or a CDATA
    section inside a string could be lost. Rewritten like this, the text is
    what the standard library reads. Bodies with none of them (the usual
    case) are returned as they are, after two searches. A section that does
    not close, or a comment holding ``--``, is left for the parser to refuse.
    """
    # One-byte searches first ("!" and "?" are rare, "<" is everywhere).
    after = body.find(b"?>") + 2 if body.startswith(b"<?xml") else 1
    if (b"!" not in body or b"<!" not in body) and (
        body.find(b"?", after) < 0 or body.find(b"<?", after) < 0
    ):
        return body
    parts = []
    pos = 0
    start = 1 if body.startswith(b"<?xml") else 0  # the XML declaration stays
    while match := _SECTION_RE.search(body, start):
        token = match.group()
        close = {b"<!--": b"-->", b"<?": b"?>"}.get(token, b"]]>")
        end = body.find(close, match.end())
        if end < 0 or (token == b"<!--" and b"--" in body[match.end() : end]):
            break
        parts.append(body[pos : match.start()])
        if token == b"<![CDATA[":
            text = body[match.end() : end]
            parts.append(text.replace(b"&", b"&amp;").replace(b"<", b"&lt;").replace(b">", b"&gt;"))
        pos = start = end + len(close)
    parts.append(body[pos:])
    return b"".join(parts)
