"""PDF/A-3b identification and the embedded ``results.json``, on top of reportlab.

reportlab writes the page content, fonts and outline; this module adds what an
archival PDF needs and reportlab does not write by itself:

* an XMP metadata stream (``pdfaid:part``/``conformance``, Dublin Core title
  and creator, dates) whose values match the document information dictionary;
* an sRGB ``/OutputIntents`` entry carrying the bundled ICC profile;
* ``results.json`` as an associated file (``/AF`` plus the ``/EmbeddedFiles``
  name tree), with its MIME type, size, date and checksum;
* fixed dates and document ID taken from the audit's timestamp, never the
  clock, so identical inputs give identical bytes.

Why part 3 and not part 2: ISO 19005-2 (PDF/A-2) allows only PDF/A files as
embedded files, so a JSON attachment would break it; ISO 19005-3 (PDF/A-3)
allows any file provided it is declared as an associated file, which is what
this module writes.

:func:`terminate_streams` rewrites reportlab's output so every ``endstream``
keyword follows an end-of-line marker not counted in ``/Length`` (ISO 19005-2
and -3, 6.1.7.1); reportlab writes the keyword right after the data.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape as _xml_escape

from reportlab.pdfbase import pdfdoc
from reportlab.pdfgen.canvas import Canvas

from engine.report.errors import ReportError
from engine.report.pdfread import PdfFile, Stream, decode_stream

__all__ = [
    "pdf_text",
    "PDFA_PART",
    "PDFA_CONFORMANCE",
    "ATTACHMENT_NAME",
    "DocumentInfo",
    "parse_timestamp",
    "pdf_date",
    "xmp_packet",
    "make_canvas_class",
    "terminate_streams",
    "read_attachment",
]

PDFA_PART = 3
PDFA_CONFORMANCE = "B"
ATTACHMENT_NAME = "results.json"
_ATTACHMENT_MIME = "application/json"
# The packet id is the fixed value the XMP specification assigns to every packet wrapper.
_XPACKET_ID = "W5M0MpCehiHzreSzNTczkc9d"


@dataclass(frozen=True)
class DocumentInfo:
    """What the information dictionary and the XMP packet both say about the document.

    ``created`` is the audit's timestamp (timezone-aware); it is used as the
    creation and modification date.
    """

    title: str
    author: str
    subject: str
    keywords: tuple[str, ...]
    creator_tool: str
    producer: str
    created: _dt.datetime
    language: str = "en"


def parse_timestamp(text: str) -> _dt.datetime:
    """An ISO 8601 timestamp as an aware datetime (a naive one is taken as UTC).

    Raises
    ------
    ReportError
        When ``text`` is not an ISO 8601 date and time.
    """
    try:
        value = _dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise ReportError(f"The report date {text!r} is not an ISO 8601 date and time.") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=_dt.UTC)
    return value.replace(microsecond=0)


def _offset(value: _dt.datetime) -> tuple[str, int, int]:
    delta = value.utcoffset() or _dt.timedelta(0)
    minutes = int(delta.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return sign, abs(minutes) // 60, abs(minutes) % 60


def pdf_date(value: _dt.datetime) -> str:
    """``D:YYYYMMDDHHmmSS+HH'mm'`` (ISO 32000-1 7.9.4)."""
    sign, hh, mm = _offset(value)
    return f"D:{value:%Y%m%d%H%M%S}{sign}{hh:02d}'{mm:02d}'"


def _xmp_date(value: _dt.datetime) -> str:
    sign, hh, mm = _offset(value)
    return f"{value:%Y-%m-%dT%H:%M:%S}{sign}{hh:02d}:{mm:02d}"


def xmp_packet(info: DocumentInfo) -> bytes:
    """The XMP metadata packet (UTF-8) identifying the file as PDF/A-3b."""
    e = _xml_escape
    date = _xmp_date(info.created)
    keywords = ", ".join(info.keywords)
    lines = [
        f'<?xpacket begin="\ufeff" id="{_XPACKET_ID}"?>',
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">',
        ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">',
        '  <rdf:Description rdf:about="" xmlns:pdfaid="http://www.aiim.org/pdfa/ns/id/">',
        f"   <pdfaid:part>{PDFA_PART}</pdfaid:part>",
        f"   <pdfaid:conformance>{PDFA_CONFORMANCE}</pdfaid:conformance>",
        "  </rdf:Description>",
        '  <rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">',
        "   <dc:format>application/pdf</dc:format>",
        f'   <dc:title><rdf:Alt><rdf:li xml:lang="x-default">{e(info.title)}</rdf:li></rdf:Alt></dc:title>',
        f"   <dc:creator><rdf:Seq><rdf:li>{e(info.author)}</rdf:li></rdf:Seq></dc:creator>",
        f'   <dc:description><rdf:Alt><rdf:li xml:lang="x-default">{e(info.subject)}</rdf:li></rdf:Alt>'
        "</dc:description>",
        f"   <dc:language><rdf:Bag><rdf:li>{e(info.language)}</rdf:li></rdf:Bag></dc:language>",
        "  </rdf:Description>",
        '  <rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/">',
        f"   <xmp:CreateDate>{date}</xmp:CreateDate>",
        f"   <xmp:ModifyDate>{date}</xmp:ModifyDate>",
        f"   <xmp:MetadataDate>{date}</xmp:MetadataDate>",
        f"   <xmp:CreatorTool>{e(info.creator_tool)}</xmp:CreatorTool>",
        "  </rdf:Description>",
        '  <rdf:Description rdf:about="" xmlns:pdf="http://ns.adobe.com/pdf/1.3/">',
        f"   <pdf:Producer>{e(info.producer)}</pdf:Producer>",
        f"   <pdf:Keywords>{e(keywords)}</pdf:Keywords>",
        "  </rdf:Description>",
        " </rdf:RDF>",
        "</x:xmpmeta>",
    ]
    # Trailing padding lets an editor rewrite the packet in place (XMP part 1, 7.3.2).
    body = "\n".join(lines) + "\n" + (" " * 99 + "\n") * 20 + '<?xpacket end="w"?>'
    return body.encode("utf-8")


# -- reportlab objects -------------------------------------------------------------------------------------


def _pdf_name(text: str) -> str:
    """A PDF name object for ``text``; unlike reportlab's PDFName it escapes ``/`` (as in MIME types)."""
    out = []
    for ch in text:
        if ch < "!" or ch > "~" or ch in "%()<>{}[]#/":
            out.append(f"#{ord(ch):02X}")
        else:
            out.append(ch)
    return "/" + "".join(out)


class _Catalog(pdfdoc.PDFCatalog):
    # reportlab's catalogue writes only the keys it knows; PDF/A needs two more.
    # __Refs__ stays the parent's list, so these arrays are written inline.
    __NoDefault__ = pdfdoc.PDFCatalog.__NoDefault__ + ["OutputIntents", "AF"]


class _Info(pdfdoc.PDFInfo):
    """The information dictionary, written from a :class:`DocumentInfo`.

    Unlike reportlab's it carries no ``/Trapped`` key (which has no XMP
    counterpart required here) and its dates are the audit's, not the clock's.
    """

    def __init__(self, info: DocumentInfo) -> None:
        super().__init__()
        self._probity = info

    def digest(self, md5object: Any) -> None:
        i = self._probity
        for part in (i.title, i.author, i.subject, ", ".join(i.keywords)):
            md5object.update(part.encode("utf-8"))

    def format(self, document: Any) -> bytes:
        i = self._probity
        date = pdfdoc.PDFString(pdf_date(i.created))
        entries = {
            "Title": pdfdoc.PDFString(i.title),
            "Author": pdfdoc.PDFString(i.author),
            "Subject": pdfdoc.PDFString(i.subject),
            "Keywords": pdfdoc.PDFString(", ".join(i.keywords)),
            "Creator": pdfdoc.PDFString(i.creator_tool),
            "Producer": pdfdoc.PDFString(i.producer),
            "CreationDate": date,
            "ModDate": date,
        }
        out: bytes = pdfdoc.PDFDictionary(entries).format(document)
        return out


class _FixedTimeStamp:
    """Stands in for reportlab's TimeStamp so no date comes from the clock or the environment."""

    def __init__(self, value: _dt.datetime) -> None:
        utc = value.astimezone(_dt.UTC)
        self.t = utc.timestamp()
        self.lt = utc.timetuple()
        self.YMDhms = tuple(utc.timetuple())[:6]
        self.dhh = 0
        self.dmm = 0
        self.tzname = "UTC"


def _add_pdfa_objects(canvas: Canvas, info: DocumentInfo, icc_profile: bytes, attachment: bytes) -> None:
    doc = canvas._doc
    doc._pdfVersion = (1, 7)  # PDF/A-3 is based on ISO 32000-1 (PDF 1.7)
    stamp = _FixedTimeStamp(info.created)
    doc._timeStamp = stamp
    # reportlab seeds the document ID with its own timestamp; reseed it from the audit's,
    # and the information dictionary adds title, author, subject and keywords.
    doc.signature = hashlib.md5(b"probity report", usedforsecurity=False)
    doc.signature.update(_xmp_date(info.created).encode("ascii"))
    doc.info = _Info(info)

    old = doc.Catalog
    catalog = _Catalog()
    catalog.__dict__.update(old.__dict__)
    doc.Catalog = doc._catalog = catalog

    metadata = pdfdoc.PDFStream(
        dictionary=pdfdoc.PDFDictionary({"Type": pdfdoc.PDFName("Metadata"), "Subtype": pdfdoc.PDFName("XML")}),
        content=xmp_packet(info),
    )
    # No filter (the document's default is none): PDF/A readers must find the packet as plain text.
    catalog.Metadata = doc.Reference(metadata, "ProbityXMP")

    profile = pdfdoc.PDFStream(
        dictionary=pdfdoc.PDFDictionary({"N": 3}), content=icc_profile, filters=[pdfdoc.PDFZCompress]
    )
    intent = pdfdoc.PDFDictionary(
        {
            "Type": pdfdoc.PDFName("OutputIntent"),
            "S": pdfdoc.PDFName("GTS_PDFA1"),
            "OutputConditionIdentifier": pdfdoc.PDFString("sRGB IEC61966-2.1"),
            "RegistryName": pdfdoc.PDFString("http://www.color.org"),
            "Info": pdfdoc.PDFString("sRGB IEC61966-2.1"),
            "DestOutputProfile": doc.Reference(profile, "ProbitySRGB"),
        }
    )
    catalog.OutputIntents = pdfdoc.PDFArray([intent])

    date = pdfdoc.PDFString(pdf_date(info.created))
    embedded = pdfdoc.PDFStream(
        dictionary=pdfdoc.PDFDictionary(
            {
                "Type": pdfdoc.PDFName("EmbeddedFile"),
                "Subtype": _pdf_name(_ATTACHMENT_MIME),
                "Params": pdfdoc.PDFDictionary(
                    {
                        "Size": len(attachment),
                        "ModDate": date,
                        "CheckSum": pdfdoc.PDFText(hashlib.md5(attachment, usedforsecurity=False).digest(), enc="raw"),
                    }
                ),
            }
        ),
        content=attachment,
        filters=[pdfdoc.PDFZCompress],
    )
    embedded_ref = doc.Reference(embedded, "ProbityResultsJSON")
    filespec = pdfdoc.PDFDictionary(
        {
            "Type": pdfdoc.PDFName("Filespec"),
            "F": pdfdoc.PDFString(ATTACHMENT_NAME),
            "UF": pdfdoc.PDFString(ATTACHMENT_NAME),
            "Desc": pdfdoc.PDFString("The audit results this report was drawn from (Probity results.json)."),
            # "Data": the file holds the numbers the report's tables and charts present.
            "AFRelationship": pdfdoc.PDFName("Data"),
            "EF": pdfdoc.PDFDictionary({"F": embedded_ref, "UF": embedded_ref}),
        }
    )
    filespec_ref = doc.Reference(filespec, "ProbityResultsFilespec")
    catalog.AF = pdfdoc.PDFArray([filespec_ref])
    catalog.Names = pdfdoc.PDFDictionary(
        {
            "EmbeddedFiles": pdfdoc.PDFDictionary(
                {"Names": pdfdoc.PDFArray([pdfdoc.PDFString(ATTACHMENT_NAME), filespec_ref])}
            )
        }
    )


def make_canvas_class(info: DocumentInfo, icc_profile: bytes, attachment: bytes) -> type[Canvas]:
    """A reportlab Canvas class that adds the PDF/A objects and the attachment to its document."""

    class ReportCanvas(Canvas):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["invariant"] = 1
            kwargs["pageCompression"] = 1
            super().__init__(*args, **kwargs)
            _add_pdfa_objects(self, info, icc_profile, attachment)
            self.showOutline()

    return ReportCanvas


# -- post-processing and reading back ----------------------------------------------------------------------

_STREAM_KEYWORD = re.compile(rb"\s*stream(\r\n|\n)")


def terminate_streams(pdf: bytes) -> bytes:
    """Put an end-of-line marker before every ``endstream`` and rebuild the cross-reference table.

    The marker is not part of the stream's data, so ``/Length`` stays right.
    Objects keep their numbers and order; only byte offsets change.
    """
    from engine.report.pdfread import parse_object

    parsed = PdfFile.from_bytes(pdf)
    spans = parsed.spans()
    if not spans:
        raise ReportError("The PDF written by reportlab holds no objects.")
    out = bytearray(pdf[: spans[0].start])
    offsets: dict[int, int] = {}
    for span in spans:
        chunk = pdf[span.start : span.end]
        offsets[span.num] = len(out)
        header = re.match(rb"\d+\s+\d+\s+obj\s*", chunk)
        assert header is not None
        value, pos = parse_object(chunk, header.end())
        keyword = _STREAM_KEYWORD.match(chunk, pos)
        if keyword is not None and isinstance(value, dict) and isinstance(value.get("Length"), int):
            data_end = keyword.end() + value["Length"]
            if chunk.startswith(b"endstream", data_end):
                chunk = chunk[:data_end] + b"\n" + chunk[data_end:]
        out += chunk
    xref_at = len(out)
    size = max(offsets) + 1
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    for num in range(1, size):
        if num not in offsets:
            raise ReportError("The PDF written by reportlab has a gap in its object numbers.")
        out += b"%010d 00000 n \n" % offsets[num]
    trailer_at = pdf.index(b"trailer", parsed.xref_offset)
    startxref_at = pdf.rindex(b"startxref")
    out += pdf[trailer_at:startxref_at]
    out += b"startxref\n%d\n%%%%EOF\n" % xref_at
    return bytes(out)


def read_attachment(pdf: PdfFile, name: str = ATTACHMENT_NAME) -> bytes | None:
    """The decoded bytes of the embedded file called ``name``, or ``None`` if there is none."""
    tree = pdf.get(pdf.catalog, "Names", "EmbeddedFiles")
    for key, spec in pdf.name_tree(tree).items():
        if pdf_text(key) != name:
            continue
        stream = pdf.get(spec, "EF", "UF") or pdf.get(spec, "EF", "F")
        if isinstance(stream, Stream):
            return decode_stream(stream)
    return None


def pdf_text(raw: Any) -> str:
    """A PDF text string (PDFDocEncoding or UTF-16BE with a byte-order mark) as str."""
    if isinstance(raw, str):
        return raw
    if not isinstance(raw, bytes):
        return ""
    if raw.startswith(b"\xfe\xff"):
        return raw[2:].decode("utf-16-be", errors="replace")
    return raw.decode("latin-1")


def attachment_names(pdf: PdfFile) -> Sequence[str]:
    """Names of every embedded file, in name-tree order."""
    tree = pdf.get(pdf.catalog, "Names", "EmbeddedFiles")
    return [pdf_text(k) for k in pdf.name_tree(tree)]


def read_icc_profile(path: Path) -> bytes:
    """The bundled sRGB profile's bytes.

    Raises
    ------
    ReportError
        When the file is missing (a broken install).
    """
    try:
        return Path(path).read_bytes()
    except OSError:
        raise ReportError(
            f"The colour profile {path} is missing; reinstall Probity to restore it.", path=path
        ) from None
