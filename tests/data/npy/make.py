#!/usr/bin/python3
"""Regenerates the .npy fixtures read by tests/unit/test_tensor.c (numpy 1.24).

Run with /usr/bin/python3 from anywhere: `/usr/bin/python3 tests/data/npy/make.py`.
The unit test hard-codes the values below; change both together."""
import os

import numpy as np
from numpy.lib import format as npf

HERE = os.path.dirname(os.path.abspath(__file__))


def save(name, arr, **kw):
    np.save(os.path.join(HERE, name), arr, **kw)


def save_version(name, arr, version):
    with open(os.path.join(HERE, name), "wb") as f:
        npf.write_array(f, arr, version=version)


# readable files
save("f4_2x3.npy", (np.arange(6, dtype=np.float32) * 0.5 - 1).reshape(2, 3))
save("f8_scalar.npy", np.array(3.25, dtype=np.float64))
save("f2.npy", np.array([1.0, -2.5, 65504.0, np.inf], dtype=np.float16))
save("i1.npy", np.array([-128, 0, 127], dtype=np.int8))
save("u1.npy", np.array([0, 255], dtype=np.uint8))
save("i2.npy", np.array([-32768, 32767], dtype=np.int16))
save("u2.npy", np.array([65535, 1], dtype=np.uint16))
save("i4.npy", np.array([[-2147483648], [7]], dtype=np.int32))
save("u4.npy", np.array([4294967295], dtype=np.uint32))
save("i8.npy", np.array([-1, 0, 2**40], dtype=np.int64))
save("u8.npy", np.array([2**64 - 1], dtype=np.uint64))
save("b1.npy", np.array([True, False, True]))
save("c8.npy", np.array([1 + 2j, -3j], dtype=np.complex64))
save("c16.npy", np.array([0.5 - 0.25j], dtype=np.complex128))
save("str_u.npy", np.array(["a", "h\u00e9llo", "\u4e2d\u6587", ""]))
save("str_s.npy", np.array([b"ab", b"xyz"]))
save("empty_0x3.npy", np.zeros((0, 3), dtype=np.float32))
save_version("v2.npy", np.array([1, 2, 3], dtype=np.int32), (2, 0))
save_version("v3.npy", np.array([[1.5, 2.5]], dtype=np.float32), (3, 0))

# files celer must refuse with a message
save("bad_fortran.npy", np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)))
save("bad_bigendian.npy", np.array([1.0, 2.0], dtype=">f4"))
save("bad_object.npy", np.array([1, "a"], dtype=object), allow_pickle=True)
save("bad_structured.npy", np.zeros(2, dtype=[("a", "<i4"), ("b", "<f4")]))
