"""Real files of each uploadable format, made with the same libraries a person's tools would use."""

from __future__ import annotations

import io
import zipfile

import docx
from fpdf import FPDF
from pypdf import PdfWriter

# Facts no seed document holds, one per format, so an answer can only come from the uploaded file.
PDF_FACT = "The Tillaberi water plant opened in 2019 and serves 42,000 households, the utility said."
DOCX_FACT = "The Dosso solar farm produces 18 megawatts at its peak, according to the ministry."
HTML_FACT = "The Agadez clinic treated 3,200 patients in March, the director said."
HTML_PAGE = f"""<!doctype html>
<html><head><title>Agadez clinic | Sahel News</title><script>window.tracker = "x";</script>
<style>body {{ font-family: serif; }}</style></head>
<body>
<nav><a href="/">Home</a> <a href="/world">World</a> <a href="/sport">Sport</a> <a href="/login">Sign in</a></nav>
<div class="ad">Buy cheap flights to Niamey today!</div>
<article>
<h1>Clinic in Agadez stretched by new arrivals</h1>
<p>{HTML_FACT} Most came from villages north of the city.</p>
<p>Staff asked for more beds. &lt;script&gt;alert("doc")&lt;/script&gt; was printed on a leaflet, the nurse added.</p>
<p>The regional governor promised two new wards by the end of the year, according to a statement.</p>
</article>
<aside><h3>Related stories</h3><ul><li><a href="/a">Floods in Maradi</a></li>
<li><a href="/b">Niamey traffic</a></li></ul></aside>
<footer>Copyright 2026 Sahel News. All rights reserved. <a href="/privacy">Privacy policy</a></footer>
<script>document.write("tracking pixel");</script>
</body></html>"""
BOILERPLATE = ("Sign in", "Buy cheap flights", "Floods in Maradi", "All rights reserved", "tracking pixel",
               "window.tracker", "font-family")


def pdf_bytes(*pages: str) -> bytes:
    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for page in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, page)
    return bytes(pdf.output())


def report_pdf() -> bytes:
    return pdf_bytes(f"Water report\n\n{PDF_FACT} Demand rose by a third since it opened.",
                     "The plant draws water from the Niger river. A second plant is planned for 2027.")


def scanned_pdf() -> bytes:
    """A page with only a picture on it (a filled box): what a scan without OCR looks like to a text reader."""
    pdf = FPDF()
    pdf.add_page()
    pdf.rect(20, 20, 150, 200, style="F")
    return bytes(pdf.output())


def encrypted_pdf() -> bytes:
    writer = PdfWriter(clone_from=io.BytesIO(report_pdf()))
    writer.encrypt("secret", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def docx_bytes(*paragraphs: str, table: list[list[str]] | None = None) -> bytes:
    document = docx.Document()
    document.add_heading("Energy note", level=1)
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, cell in enumerate(row):
                grid.cell(r, c).text = cell
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def energy_docx() -> bytes:
    return docx_bytes(DOCX_FACT, "A storage battery will be added next year. The project cost 40 million euros.",
                      table=[["Site", "Megawatts"], ["Dosso", "18"]])


def zip_bomb_docx(padding_mb: int = 20) -> bytes:
    """A real DOCX with a part of zeros added: a few kilobytes zipped, `padding_mb` MB unpacked."""
    out = io.BytesIO(energy_docx())
    with zipfile.ZipFile(out, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/media/padding.bin", bytes(padding_mb * 2**20))
    return out.getvalue()
