"""Hostile XML in request bodies: DTDs and entities in any encoding, attributes, stray text and
elements, deep nesting, bad method names and characters; each gets its exact fault, and the
server lives on."""

from __future__ import annotations

import gzip
import re
import xmlrpc.client

import pytest
from core_helpers import call_body, post
from hostile_helpers import DEPTH, LIMIT, post_measured, serving, still_answers

from flask_rpcenable.errors import INVALID_REQUEST, NOT_WELL_FORMED, RPCError
from flask_rpcenable.protocols import xmlrpc_codec as codec
from flask_rpcenable.protocols import xmlrpc_scan as scan

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<methodCall><methodName>echo</methodName><params><param><value><string>&lol9;</string>
</value></param></params></methodCall>"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<methodCall><methodName>echo</methodName><params><param><value><string>&xxe;</string>
</value></param></params></methodCall>"""

XXE_PARAMETER = b"""<?xml version="1.0"?>
<!DOCTYPE foo [<!ENTITY % dtd SYSTEM "http://127.0.0.1:9/evil.dtd"> %dtd;]>
<methodCall><methodName>echo</methodName></methodCall>"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE methodCall SYSTEM "file:///etc/passwd">
<methodCall><methodName>echo</methodName></methodCall>"""

DOCTYPE_ONLY = b"""<!DOCTYPE methodCall [<!ELEMENT methodCall ANY>]>
<methodCall><methodName>echo</methodName></methodCall>"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    with serving(tmp_path_factory.mktemp("hostile")) as served:
        yield served


# -- entities and DTDs -------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [BILLION_LAUGHS, XXE, XXE_PARAMETER, EXTERNAL_DTD, DOCTYPE_ONLY],
    ids=["billion-laughs", "xxe", "xxe-parameter", "external-dtd", "doctype"],
)
def test_dtds_are_refused_at_once(url, records, body):
    reply, peak = post_measured(url, body)
    assert reply.status == 200
    fault = reply.fault()
    assert fault.faultCode == NOT_WELL_FORMED
    assert "DTD" in fault.faultString
    assert b"root:" not in reply.body and b"lollol" not in reply.body
    # nothing was expanded: far below the 3 GB a billion laughs would take
    assert peak < 2 * 1024 * 1024, peak
    assert [(r.method, r.fault_code) for r in records] == [("-", NOT_WELL_FORMED)]
    still_answers(url)


@pytest.mark.parametrize(
    "prefix",
    [b"", b"  \n\t", b"\xef\xbb\xbf", b"<!-- a comment -->", b"<?xml version='1.0'?>\n<!--x-->\n"],
    ids=["none", "whitespace", "utf8-bom", "comment", "decl-and-comment"],
)
def test_doctype_after_any_prolog_is_refused(url, prefix):
    body = prefix + b'<!DOCTYPE x [<!ENTITY e "boom">]><methodCall><methodName>echo</methodName>'
    body += b"<params><param><value>&e;</value></param></params></methodCall>"
    assert post(url, body).fault().faultCode == NOT_WELL_FORMED
    still_answers(url)


def _utf16(text: str, codec_name: str) -> bytes:
    return text.encode(codec_name)


DOCTYPE_CALL = (
    '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
    "<methodCall><methodName>echo</methodName><params><param><value>&e;</value></param>"
    "</params></methodCall>"
)


@pytest.mark.parametrize(
    "body",
    [
        _utf16("<?xml version='1.0' encoding='UTF-16'?>" + DOCTYPE_CALL, "utf-16"),  # with BOM
        _utf16("<?xml version='1.0' encoding='UTF-16'?>" + DOCTYPE_CALL, "utf-16-le"),  # no BOM
        _utf16("<?xml version='1.0' encoding='UTF-16'?>" + DOCTYPE_CALL, "utf-16-be"),
        _utf16(DOCTYPE_CALL, "utf-32"),
        b"<?xml version='1.0' encoding='UTF-16'?>" + DOCTYPE_CALL.encode("utf-16-le"),
        b"<?xml version='1.0' encoding='UTF-7'?>" + DOCTYPE_CALL.encode("utf-7"),
        b"<?xml version='1.0' encoding='cp037'?>" + DOCTYPE_CALL.encode("cp037"),
        b"<?xml version='1.0' encoding='shift_jis'?><methodCall/>",
        b"<?xml version='1.0' encoding='no-such-codec'?><methodCall/>",
    ],
    ids=["utf16-bom", "utf16le", "utf16be", "utf32", "ascii-decl-utf16", "utf7", "ebcdic",
         "shift-jis", "unknown"],
)
def test_doctype_in_an_unsupported_encoding(url, records, body):
    reply = post(url, body)
    fault = reply.fault()
    assert fault.faultCode == NOT_WELL_FORMED
    assert "encoding" in fault.faultString
    assert b"root:" not in reply.body
    assert records[0].method == "-"
    still_answers(url)


def test_an_encoding_beyond_the_scanned_declaration_cannot_switch_the_parser(url):
    """A declaration too long to read: the body is read (and parsed) as UTF-8 anyway."""
    decl = b"<?xml version='1.0'" + b" " * 2000 + b" encoding='UTF-7'?>"
    body = decl + DOCTYPE_CALL.encode("utf-7")
    reply = post(url, body)
    fault = reply.fault()
    assert fault.faultCode == NOT_WELL_FORMED
    assert "within the first 1024 bytes" in fault.faultString
    assert b"root:" not in reply.body
    still_answers(url)


def test_a_declaration_closing_within_the_window_is_read(url):
    decl = b"<?xml version='1.0'" + b" " * 900 + b" encoding='UTF-7'?>"
    reply = post(url, decl + DOCTYPE_CALL.encode("utf-7"))
    assert reply.fault().faultCode == NOT_WELL_FORMED
    assert "encoding" in reply.fault().faultString


def test_multicall_entry_names_are_checked_like_call_names(url, records):
    long_name = "a" * (LIMIT - 1000)
    calls = [
        {"methodName": long_name, "params": []},
        {"methodName": "echo!", "params": []},
        {"methodName": "echo", "params": ["ok"]},
    ]
    reply = post(url, xmlrpc.client.dumps((calls,), "system.multicall").encode())
    first, second, third = reply.loads()
    assert first["faultCode"] == INVALID_REQUEST and second["faultCode"] == INVALID_REQUEST
    assert len(first["faultString"]) < 100 and long_name not in reply.body.decode()
    assert third == ["ok"]
    assert all(len(r.method) <= 255 for r in records)


def test_attributes_are_refused(url):
    few = b'<methodCall><methodName a="1">echo</methodName></methodCall>'
    assert post(url, few).fault().faultCode == INVALID_REQUEST
    many = b"<methodCall><methodName>echo</methodName><params>"
    # Over 10,000 '=': the tags are scanned before parsing.
    many += (b'<param><value><string b="' + b"=" * 20 + b'">x</string></value></param>') * 600
    many += b"</params>"
    many += b"</methodCall>"
    assert post(url, many).fault().faultCode == INVALID_REQUEST
    xmlns = b'<methodCall xmlns:ex="http://ws.apache.org/xmlrpc/namespaces/extensions">'
    xmlns += b"<methodName>echo</methodName><params><param><value><ex:i8>5</ex:i8></value>"
    xmlns += b"</param></params></methodCall>"
    assert post(url, xmlns).loads() == 5


@pytest.mark.parametrize(
    "body",
    [
        b"<methodCall>text<methodName>echo</methodName></methodCall>",
        b"<methodCall><methodName>echo</methodName><params>x<param><value>1</value></param>"
        b"</params></methodCall>",
        b"<methodCall><methodName>echo</methodName><params><param><value><int>1</int>x"
        b"</value></param></params></methodCall>",
        b"<methodCall><methodName>echo</methodName><params><param><value><array><data>"
        b"<value>1</value>x</data></array></value></param></params></methodCall>",
        b"<methodCall><methodName>echo</methodName><params><param><value><struct><member>"
        b"<name>a</name>x<value>1</value></member></struct></value></param></params>"
        b"</methodCall>",
        b"<methodCall><methodName>echo</methodName><x/></methodCall>",
    ],
    ids=["in-call", "in-params", "after-typed", "in-data", "in-member", "unknown-element"],
)
def test_text_and_elements_out_of_place_are_refused(url, body):
    assert post(url, body).fault().faultCode == INVALID_REQUEST


def test_cdata_and_comments_are_fine(url):
    body = (
        b"<?xml version='1.0'?><!-- hello --><methodCall><methodName>echo</methodName>"
        b"<params><param><value><string><![CDATA[<b>&amp;</b>]]></string></value>"
        b"</param></params></methodCall>"
    )
    assert post(url, body).loads() == "<b>&amp;</b>"


def test_second_line_of_defence_without_the_scan(monkeypatch):
    """With the byte scan switched off, the parser still expands and loads nothing.

    This checks the parser the codec relies on behind its own scan: lxml is
    told not to resolve entities, load DTDs or use the network, so the
    entity reference stays a reference (which no XML-RPC value may hold).
    """
    monkeypatch.setattr(scan, "_DECLARATION_RE", re.compile(rb"(?!)"))
    for body in (BILLION_LAUGHS, XXE):
        with pytest.raises(RPCError) as excinfo:
            codec.decode_request(body)
        assert excinfo.value.code in (NOT_WELL_FORMED, INVALID_REQUEST)
        assert "root:" not in excinfo.value.message
        assert "lollol" not in excinfo.value.message


# -- structure ------------------------------------------------------------------------


def nested(depth: int, kind: str = "array") -> str:
    """A value nested ``depth`` levels deep (1 is a plain value)."""
    value = "<int>1</int>"
    for _ in range(depth - 1):
        if kind == "array":
            value = f"<array><data><value>{value}</value></data></array>"
        else:
            value = f"<struct><member><name>k</name><value>{value}</value></member></struct>"
    return value


@pytest.mark.parametrize("kind", ["array", "struct"])
def test_nesting_up_to_the_limit_is_fine(url, kind):
    body = (
        "<methodCall><methodName>echo</methodName><params><param><value>"
        f"{nested(DEPTH, kind)}</value></param></params></methodCall>"
    ).encode()
    result = post(url, body).loads()
    for _ in range(DEPTH - 1):
        result = result[0] if kind == "array" else result["k"]
    assert result == 1


@pytest.mark.parametrize("depth", [DEPTH + 1, 1000, 20000])
@pytest.mark.parametrize("kind", ["array", "struct"])
def test_too_deep_nesting_is_a_fault(url, records, kind, depth):
    body = (
        "<methodCall><methodName>echo</methodName><params><param><value>"
        f"{nested(depth, kind)}</value></param></params></methodCall>"
    ).encode()
    if len(body) > LIMIT:
        body = gzip.compress(body)  # still over the limit once inflated: 413
        assert post(url, body, {"Content-Encoding": "gzip"}).status == 413
    else:
        fault = post(url, body).fault()
        assert fault.faultCode == INVALID_REQUEST
        assert f"deeper than {DEPTH}" in fault.faultString
        assert records[0].method == "-"
    still_answers(url)


def test_deep_plain_xml_is_a_fault_not_a_crash(url):
    """Deep elements the decoder never walks into still get a clean answer."""
    depth = (LIMIT - 200) // 7
    body = b"<methodCall>" + b"<a>" * depth + b"</a>" * depth + b"</methodCall>"
    fault = post(url, body).fault()
    assert fault.faultCode == INVALID_REQUEST
    still_answers(url)


@pytest.mark.parametrize(
    "body",
    [
        b"<methodCall><methodName>" + b"a" * 300 + b"</methodName></methodCall>",
        b"<methodCall><methodName>echo\x07</methodName></methodCall>",
        b"<methodCall><methodName>echo<b/></methodName></methodCall>",
        b"<foo><methodName>echo</methodName></foo>",
        b"<methodCall/>",
    ],
    ids=["long-name", "control-char", "element-in-name", "wrong-root", "empty-call"],
)
def test_bad_method_names_and_roots(url, body):
    reply = post(url, body)
    assert reply.fault().faultCode in (NOT_WELL_FORMED, INVALID_REQUEST)
    still_answers(url)


def test_invalid_utf8_is_not_well_formed(url):
    body = call_body("echo", "x").replace(b"<string>x", b"<string>\xff\xfe")
    assert post(url, body).fault().faultCode == NOT_WELL_FORMED
    still_answers(url)


def test_lone_surrogate_reference_is_not_well_formed(url):
    body = call_body("echo", "x").replace(b"<string>x", b"<string>&#xD800;")
    assert post(url, body).fault().faultCode == NOT_WELL_FORMED
    still_answers(url)


def test_many_small_values_are_fine(url):
    values = list(range(2000))
    assert post(url, call_body("echo", values)).loads() == values
