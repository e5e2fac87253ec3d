"""PDF documents served by the local site become clauses; text-less PDFs fail the check."""

from __future__ import annotations

import json

from tests.conftest import require_browser, target_toml


def make_pdf(lines: list[str]) -> bytes:
    """A minimal valid one-page PDF; each non-empty line is drawn as text, '' leaves a gap."""
    ops = ["BT /F1 11 Tf 72 760 Td 14 TL"]
    for line in lines:
        escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        ops.append(f"({escaped}) Tj T*" if line else "T*")
    ops.append("ET")
    return _pdf_file("\n".join(ops).encode("latin-1"), font=True)


def make_image_only_pdf() -> bytes:
    """A PDF that draws only a filled rectangle: nothing to extract, like a scan."""
    return _pdf_file(b"0.5 g 72 600 300 100 re f", font=False)


def _pdf_file(stream: bytes, font: bool) -> bytes:
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
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref)
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
