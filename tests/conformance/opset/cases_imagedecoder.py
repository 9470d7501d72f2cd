"""ImageDecoder 20: encoded JPEG / PNG bytes (1-D uint8) -> uint8 [H, W, C] in RGB, BGR or
Grayscale.

ONNX Runtime (onnxruntime-node 1.31.1, CPU) has no ImageDecoder kernel, so it cannot be the
oracle here: the expected outputs are the ONNX reference implementation's
(onnx/reference/ops/op_image_decoder.py), which is PIL: Image.open, RGB/BGR as decoded (convert("RGB") for the PNGs that are not RGB, where the
reference would return 2 or 4 channels against the spec's [H, W, 3]), Grayscale convert("L").
gen.py would send CASES to ONNX Runtime, so CASES stays empty and this file writes its own cases:
    /usr/bin/python3 tests/conformance/opset/cases_imagedecoder.py [out_dir]
The images are made here with PIL, small and deterministic: PNGs of every colour type (RGB,
RGBA, grey, palette) and baseline and progressive JPEGs (PIL decodes with the same libjpeg-turbo
as celer, default IDCT and fancy upsampling, so these are exact too)."""
import io
import os
import shutil
import sys

import numpy as np
from onnx import helper
from PIL import Image

from onnx import numpy_helper

from opset_case import case

rng = np.random.default_rng(20)
N = helper.make_node


def encode(mode, size, fmt, **kw):
    """A `mode` image of size (w, h) with smooth gradients and some noise, encoded as `fmt`."""
    w, h = size
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), (x + y) * 127 // max(w + h - 2, 1)], -1)
    rgb = np.clip(base + rng.integers(-20, 20, base.shape), 0, 255).astype(np.uint8)
    im = Image.fromarray(rgb, "RGB")
    if mode == "RGBA":
        im.putalpha(Image.fromarray(rng.integers(0, 256, (h, w)).astype(np.uint8), "L"))
    elif mode == "P":
        im = im.quantize(16)
    elif mode != "RGB":
        im = im.convert(mode)
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return np.frombuffer(buf.getvalue(), np.uint8).copy()


def decoder(name, data, **attrs):
    return case(name, 20, [N("ImageDecoder", ["x"], ["y"], **attrs)], [("x", data)], [("y", np.uint8)])


def reference(data, pixel_format="RGB"):
    """What the ONNX reference (PIL) gives, with 3 channels for RGB / BGR."""
    im = Image.open(io.BytesIO(data.tobytes()))
    if pixel_format == "Grayscale":
        return np.asarray(im.convert("L"))[:, :, None]
    rgb = np.asarray(im.convert("RGB"))
    return np.ascontiguousarray(rgb[:, :, ::-1] if pixel_format == "BGR" else rgb)


PNG_RGB = encode("RGB", (7, 5), "PNG")
PNG_RGBA = encode("RGBA", (4, 6), "PNG")
PNG_GRAY = encode("L", (5, 3), "PNG")
PNG_PAL = encode("P", (6, 4), "PNG")
JPEG = encode("RGB", (19, 13), "JPEG", quality=85)  # 4:2:0, sizes not multiples of the MCU
JPEG_PROG = encode("RGB", (16, 9), "JPEG", quality=70, progressive=True, subsampling=0)
JPEG_GRAY = encode("L", (9, 7), "JPEG")

# gen.py runs CASES through ONNX Runtime, which has no ImageDecoder: see the docstring
CASES = []

OWN = [
    decoder("imagedecoder_png_rgb_default", PNG_RGB),
    decoder("imagedecoder_png_rgb", PNG_RGB, pixel_format="RGB"),
    decoder("imagedecoder_png_bgr", PNG_RGB, pixel_format="BGR"),
    decoder("imagedecoder_png_grayscale", PNG_RGB, pixel_format="Grayscale"),
    decoder("imagedecoder_png_rgba_rgb", PNG_RGBA),
    decoder("imagedecoder_png_rgba_bgr", PNG_RGBA, pixel_format="BGR"),
    decoder("imagedecoder_png_rgba_grayscale", PNG_RGBA, pixel_format="Grayscale"),
    decoder("imagedecoder_png_gray_rgb", PNG_GRAY),
    decoder("imagedecoder_png_gray_bgr", PNG_GRAY, pixel_format="BGR"),
    decoder("imagedecoder_png_gray_grayscale", PNG_GRAY, pixel_format="Grayscale"),
    decoder("imagedecoder_png_palette_rgb", PNG_PAL),
    decoder("imagedecoder_png_palette_grayscale", PNG_PAL, pixel_format="Grayscale"),
    decoder("imagedecoder_jpeg_rgb_default", JPEG),
    decoder("imagedecoder_jpeg_bgr", JPEG, pixel_format="BGR"),
    decoder("imagedecoder_jpeg_grayscale", JPEG, pixel_format="Grayscale"),
    decoder("imagedecoder_jpeg_progressive_444_rgb", JPEG_PROG),
    decoder("imagedecoder_jpeg_progressive_444_grayscale", JPEG_PROG, pixel_format="Grayscale"),
    decoder("imagedecoder_jpeg_gray_rgb", JPEG_GRAY),
    decoder("imagedecoder_jpeg_gray_grayscale", JPEG_GRAY, pixel_format="Grayscale"),
]


def main():
    out = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(__file__), "..", "..", "data", "onnx-opset"))
    for c in OWN:
        (x_name, x), = c.inputs
        attrs = {a.name: a.s.decode() for a in c.model.graph.node[0].attribute}
        y = reference(x, attrs.get("pixel_format", "RGB"))
        d = os.path.join(out, "node", c.name)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(os.path.join(d, "test_data_set_0"))
        with open(os.path.join(d, "model.onnx"), "wb") as f:
            f.write(c.model.SerializeToString())
        with open(os.path.join(d, "test_data_set_0", "input_0.pb"), "wb") as f:
            f.write(numpy_helper.from_array(x, x_name).SerializeToString())
        with open(os.path.join(d, "test_data_set_0", "output_0.pb"), "wb") as f:
            f.write(numpy_helper.from_array(y, "y").SerializeToString())
    print(f"{len(OWN)} cases written to {out}/node")


if __name__ == "__main__":
    main()
