"""PDF documents served by the local site become clauses; text-less PDFs fail the check."""

from __future__ import annotations

import io
import json

from pypdf import PdfReader, PdfWriter

from tests.conftest import require_browser, target_toml


def make_pdf(lines: list[str], encrypt: bytes = b"") -> bytes:
    """A minimal valid one-page PDF; each non-empty line is drawn as text, '' leaves a gap.
    `encrypt` is an encryption dictionary for the trailer (the text itself stays plain)."""
    ops = ["BT /F1 11 Tf 72 760 Td 14 TL"]
    for line in lines:
        escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        ops.append(f"({escaped}) Tj T*" if line else "T*")
    ops.append("ET")
    return _pdf_file("\n".join(ops).encode("latin-1"), font=True, encrypt=encrypt)


def make_rc4_pdf(lines: list[str]) -> bytes:
    """The PDF encrypted by pypdf's writer with RC4-128 and an empty user password."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf(lines))))
    writer.encrypt(user_password="", owner_password="owner", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


AES_256 = (b"<< /Filter /Standard /V 5 /R 6 /Length 256 /P -1028 /O <" + b"11" * 48
           + b"> /U <" + b"22" * 48 + b"> /OE <" + b"33" * 32 + b"> /UE <" + b"44" * 32
           + b"> /Perms <" + b"55" * 16 + b"> /CF << /StdCF << /CFM /AESV3 /AuthEvent /DocOpen "
           b"/Length 32 >> >> /StmF /StdCF /StrF /StdCF >>")
"""The encryption dictionary of an AES-256 PDF, what pypdf reads before anything else. pypdf's
writer needs `cryptography` for AES, which is not a dependency, so it is written by hand; its
keys match no password, and without `cryptography` pypdf cannot even try the empty one."""
CERTIFICATE = b"<< /Filter /Adobe.PubSec /SubFilter /adbe.pkcs7.s5 /V 4 /Recipients [<00>] >>"
"""A PDF encrypted for the holders of certificates, which pypdf does not support."""


def make_image_only_pdf() -> bytes:
    """A PDF that draws only a filled rectangle: nothing to extract, like a scan."""
    return _pdf_file(b"0.5 g 72 600 300 100 re f", font=False)


def _pdf_file(stream: bytes, font: bool, encrypt: bytes = b"") -> bytes:
    resources = "<< /Font << /F1 5 0 R >> >>" if font else "<< >>"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        f"/Resources {resources} >>".encode(),
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R%s >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, b" /Encrypt " + encrypt if encrypt else b"", xref)
    return bytes(out)


DPA = ["Data Processing Agreement", "", "Article 5 Sub-processors",
       "The processor may engage sub-processors.", "",
       "3.4.2. Notice of new sub-processors",
       "We give 30 days notice before a new sub-processor starts.", "",
       "- Hosting in the EU", "- Support in the US"]


def test_pdf_becomes_clauses_with_sections(project, site):
    url = site.set("/dpa.pdf", make_pdf(DPA), content_type="application/pdf")
    project.write_config(target_toml("dpa", url, document="DPA"))
    assert project.json("check")[0]["status"] == "new"
    shown = project.run("show", "dpa").output
    assert shown == ("Data Processing Agreement\n\n# Article 5 Sub-processors\n\n"
                     "The processor may engage sub-processors.\n\n"
                     "### 3.4.2. Notice of new sub-processors\n\n"
                     "We give 30 days notice before a new sub-processor starts.\n\n"
                     "- Hosting in the EU\n\n- Support in the US\n")


def test_changed_pdf_is_a_clause_level_change(project, site):
    url = site.set("/dpa.pdf", make_pdf(DPA), content_type="application/pdf")
    project.write_config(target_toml("dpa", url, document="DPA"))
    project.json("check")
    changed = [line.replace("30 days", "10 days") for line in DPA]
    site.set("/dpa.pdf", make_pdf(changed), content_type="application/pdf")
    result = project.json("check")[0]
    assert result["status"] == "changed"
    assert result["summary"] == {"added": 0, "removed": 0, "modified": 1, "moved": 0}


def test_pdf_without_text_is_a_failed_check_that_says_so(project, site):
    url = site.set("/scan.pdf", make_image_only_pdf(), content_type="application/pdf")
    project.write_config(target_toml("scan", url, document="DPA"))
    result = project.run("check", "--json")
    assert result.exit_code == 1
    row = json.loads(result.stdout)[0]
    assert row["status"] == "failed"
    assert "no extractable text" in row["reason"]
    assert project.json("history", "scan") == []


def test_auto_reads_a_pdf_the_same_both_ways_and_settles_on_http(project, site):
    require_browser()
    url = site.set("/dpa.pdf", make_pdf(DPA), content_type="application/pdf")
    project.write_config(target_toml("dpa", url, document="DPA", fetcher="auto"))
    assert project.json("check")[0]["status"] == "new"
    assert project.json("list")[0]["fetcher_used"] == "http"
    assert "### 3.4.2. Notice of new sub-processors" in project.run("show", "dpa").output


def test_encrypted_pdfs_are_read_with_an_empty_password_or_fail_saying_why(project, site):
    rc4 = site.set("/rc4.pdf", make_rc4_pdf(DPA), content_type="application/pdf")
    aes = site.set("/aes.pdf", make_pdf(DPA, encrypt=AES_256), content_type="application/pdf")
    cert = site.set("/cert.pdf", make_pdf(DPA, encrypt=CERTIFICATE),
                    content_type="application/pdf")
    plain = site.set("/dpa.pdf", make_pdf(DPA), content_type="application/pdf")
    project.write_config("".join(target_toml(name, url, document="DPA") for name, url in (
        ("rc4", rc4), ("aes", aes), ("cert", cert), ("plain", plain))))
    result = project.run("check", "--json")
    assert result.exit_code == 1
    by_id = {row["id"]: row for row in json.loads(result.stdout)}
    assert (by_id["rc4"]["status"], by_id["plain"]["status"]) == ("new", "new")
    assert project.run("show", "rc4").output == project.run("show", "plain").output
    for name in ("aes", "cert"):
        assert by_id[name]["status"] == "failed"
        assert by_id[name]["reason"].startswith("the PDF is encrypted")
        assert by_id[name]["reason"].endswith("its text cannot be read")
    assert project.json("history", "aes") == []
