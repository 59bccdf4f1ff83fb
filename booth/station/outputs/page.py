"""The printed page: the photo with its caption band (never its QR code, link or token: the
Product's picture is the photo alone) laid out on the paper at 300 dpi, as a one-page PDF.

The picture keeps its shape and is centred on the page, as large as the page allows (its
sides are never cut: the caption and the credit run to the band's edges); what is left is
white. It is resized once, from the picture as the station made it, with Lanczos when it
shrinks (the usual case: the sol-46 photo is 1920 x 1532 for a 6 x 4 in page's 1800 x 1200)
and bicubic when it grows (Lanczos rings round the caption's letters). The image carries the
sRGB profile (an ICCBased colour space), so CUPS and the printer's colour management take its
colours as the screen showed them. The page is exactly the paper's size: on a borderless
queue (booth.station.outputs.cups chooses that size where the queue has one) nothing is
scaled again.
"""

from __future__ import annotations

import io
import zlib
from dataclasses import dataclass

from PIL import Image, ImageCms

DPI = 300
JPEG_QUALITY = 95


@dataclass(frozen=True)
class Paper:
    name: str  # as [printer] paper says it
    width_in: float  # portrait: the short side
    height_in: float
    pwg: str  # the IPP media name, when the queue has no size of that name

    def pixels(self, landscape: bool) -> tuple[int, int]:
        w, h = round(self.width_in * DPI), round(self.height_in * DPI)
        return (h, w) if landscape else (w, h)


PAPERS = {
    "4x6in": Paper("4x6in", 4.0, 6.0, "na_index-4x6_4x6in"),
    "10x15cm": Paper("10x15cm", 100 / 25.4, 150 / 25.4, "om_small-photo_100x150mm"),
    "A6": Paper("A6", 105 / 25.4, 148 / 25.4, "iso_a6_105x148mm"),
}
_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def layout(picture: Image.Image, paper: Paper) -> Image.Image:
    """The page as pixels at 300 dpi: the picture centred, as large as fits, on white; the
    page turned to the picture's orientation."""
    w, h = paper.pixels(landscape=picture.width >= picture.height)
    scale = min(w / picture.width, h / picture.height)
    size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
    resample = Image.Resampling.LANCZOS if scale <= 1 else Image.Resampling.BICUBIC
    page = Image.new("RGB", (w, h), "white")
    page.paste(picture.convert("RGB").resize(size, resample),
               ((w - size[0]) // 2, (h - size[1]) // 2))
    return page


def pdf(page: Image.Image, dpi: int = DPI) -> bytes:
    """A one-page PDF of the page image at `dpi`, its JPEG tagged sRGB (Pillow's own PDF
    writer leaves images in DeviceRGB, whose colours each device reads its own way)."""
    jpeg = io.BytesIO()
    page.save(jpeg, format="JPEG", quality=JPEG_QUALITY, subsampling=0)
    wpt, hpt = page.width * 72 / dpi, page.height * 72 / dpi
    content = f"q {wpt:.4f} 0 0 {hpt:.4f} 0 0 cm /Im0 Do Q".encode()
    icc = zlib.compress(_SRGB)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {wpt:.4f} {hpt:.4f}] "
        f"/Resources << /XObject << /Im0 4 0 R >> >> /Contents 5 0 R >>".encode(),
        _stream(f"<< /Type /XObject /Subtype /Image /Width {page.width} /Height "
                f"{page.height} /ColorSpace [/ICCBased 6 0 R] /BitsPerComponent 8 "
                f"/Filter /DCTDecode", jpeg.getvalue()),
        _stream("<<", content),
        _stream("<< /N 3 /Alternate /DeviceRGB /Filter /FlateDecode", icc),
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += (f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n"
            "%%EOF\n").encode()
    return bytes(out)


def _stream(head: str, data: bytes) -> bytes:
    return f"{head} /Length {len(data)} >>\nstream\n".encode() + data + b"\nendstream"


def page_pdf(picture: Image.Image, paper: Paper) -> bytes:
    """What is printed: the picture on the paper, as a PDF."""
    return pdf(layout(picture, paper))
