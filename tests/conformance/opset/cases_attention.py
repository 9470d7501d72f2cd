"""RotaryEmbedding 23 and Attention 23 (attention.c): RoPE split in halves or interleaved, partial
rotation, 3-D input with num_heads, caches indexed by position_ids or given per token; attention
over 4-D and 3-D Q/K/V, grouped-query and multi-query heads, boolean and float masks broadcast
from 2-D to 4-D, is_causal (bottom-right aligned when a past cache is given), scale, softcap,
past_key/past_value with present_key/present_value, double and float16."""
import numpy as np
from onnx import helper

from opset_case import case

rng = np.random.default_rng(23)
f32 = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
N = helper.make_node


def rope_caches(positions, half):
    """cos and sin of position * 10000^(-2i/d), as exporters build them."""
    inv = 1.0 / (10000 ** (np.arange(half) / half))
    ang = np.asarray(positions, np.float64)[..., None] * inv
    return np.cos(ang).astype(np.float32), np.sin(ang).astype(np.float32)


def rope(name, x, rd=0, interleaved=0, num_heads=None, pos=True, max_pos=16, dtype=np.float32):
    b, s = x.shape[0], (x.shape[2] if x.ndim == 4 else x.shape[1])
    head = x.shape[3] if x.ndim == 4 else x.shape[2] // num_heads
    half = (rd or head) // 2
    attrs = {"interleaved": interleaved}
    if rd:
        attrs["rotary_embedding_dim"] = rd
    if num_heads:
        attrs["num_heads"] = num_heads
    if pos:
        cos, sin = rope_caches(np.arange(max_pos), half)
        ids = rng.integers(0, max_pos, (b, s)).astype(np.int64)
        inputs = [("x", x.astype(dtype)), ("cos", cos.astype(dtype)), ("sin", sin.astype(dtype)), ("pos", ids)]
    else:
        cos, sin = rope_caches(rng.integers(0, 50, (b, s)), half)
        inputs = [("x", x.astype(dtype)), ("cos", cos.astype(dtype)), ("sin", sin.astype(dtype))]
    return case(name, 23, [N("RotaryEmbedding", [n for n, _ in inputs], ["y"], **attrs)], inputs, [("y", dtype)])


def attn(name, q, k, v, mask=None, past=None, outs=1, dtype=np.float32, **attrs):
    inputs = [("q", q), ("k", k), ("v", v)]
    names = ["q", "k", "v"]
    if mask is not None:
        inputs.append(("mask", mask))
        names.append("mask")
    elif past is not None:
        names.append("")
    if past is not None:
        inputs += [("past_k", past[0]), ("past_v", past[1])]
        names += ["past_k", "past_v"]
    inputs = [(n, a.astype(dtype) if a.dtype == np.float32 else a) for n, a in inputs]
    out_names = ["y", "present_k", "present_v"][:outs]
    return case(name, 23, [N("Attention", names, out_names, **attrs)], inputs, [(n, dtype) for n in out_names])


CASES = [
    # RotaryEmbedding 23
    rope("rope_opset23_4d_position_ids", f32(2, 3, 5, 8)),
    rope("rope_opset23_4d_caches_per_token", f32(2, 2, 4, 6), pos=False),
    rope("rope_opset23_4d_interleaved", f32(1, 2, 5, 8), interleaved=1),
    rope("rope_opset23_3d_num_heads", f32(2, 4, 12), num_heads=3),
    rope("rope_opset23_3d_interleaved_caches_per_token", f32(2, 3, 16), num_heads=2, interleaved=1, pos=False),
    rope("rope_opset23_partial", f32(2, 2, 3, 8), rd=4),
    rope("rope_opset23_partial_interleaved_3d", f32(1, 4, 20), rd=6, interleaved=1, num_heads=2),
    rope("rope_opset23_float16", f32(1, 2, 3, 8), dtype=np.float16),
    # Attention 23: 4-D, cross attention with a value head size of its own
    attn("attention_opset23_4d", f32(2, 3, 4, 8), f32(2, 3, 5, 8), f32(2, 3, 5, 6)),
    attn("attention_opset23_3d", f32(2, 4, 24), f32(2, 5, 24), f32(2, 5, 18), q_num_heads=3, kv_num_heads=3),
    attn("attention_opset23_4d_gqa", f32(2, 4, 3, 8), f32(2, 2, 6, 8), f32(2, 2, 6, 8)),
    attn("attention_opset23_3d_gqa", f32(1, 3, 32), f32(1, 4, 16), f32(1, 4, 16), q_num_heads=4, kv_num_heads=2),
    attn("attention_opset23_3d_mqa", f32(2, 3, 24), f32(2, 3, 8), f32(2, 3, 4), q_num_heads=3, kv_num_heads=1),
    attn("attention_opset23_scale", f32(1, 2, 3, 4), f32(1, 2, 3, 4), f32(1, 2, 3, 4), scale=0.7),
    attn("attention_opset23_softcap", 3 * f32(1, 2, 3, 4), 3 * f32(1, 2, 5, 4), f32(1, 2, 5, 4), softcap=2.5),
    attn("attention_opset23_causal", f32(2, 2, 5, 4), f32(2, 2, 5, 4), f32(2, 2, 5, 4), is_causal=1),
    attn("attention_opset23_causal_3d_gqa", f32(1, 4, 16), f32(1, 4, 8), f32(1, 4, 8), is_causal=1,
         q_num_heads=4, kv_num_heads=2),
    attn("attention_opset23_mask_bool_2d", f32(2, 2, 3, 4), f32(2, 2, 5, 4), f32(2, 2, 5, 4),
         mask=np.array([[1, 1, 0, 1, 0], [0, 1, 1, 1, 1], [1, 0, 0, 0, 1]], np.bool_)),
    attn("attention_opset23_mask_float_4d", f32(2, 2, 3, 4), f32(2, 2, 5, 4), f32(2, 2, 5, 4),
         mask=f32(2, 1, 3, 5)),
    attn("attention_opset23_mask_float_3d_heads", f32(1, 3, 8), f32(1, 4, 8), f32(1, 4, 8),
         mask=f32(2, 3, 4), q_num_heads=2, kv_num_heads=2),
    attn("attention_opset23_mask_bool_causal", f32(1, 2, 4, 4), f32(1, 2, 4, 4), f32(1, 2, 4, 4),
         mask=np.array([[1, 0, 1, 1], [1, 1, 1, 1], [0, 1, 1, 1], [1, 1, 0, 1]], np.bool_), is_causal=1),
    attn("attention_opset23_past_present", f32(2, 2, 3, 4), f32(2, 2, 3, 4), f32(2, 2, 3, 6),
         past=(f32(2, 2, 4, 4), f32(2, 2, 4, 6)), outs=3),
    attn("attention_opset23_past_present_3d_gqa_causal", f32(1, 2, 16), f32(1, 2, 8), f32(1, 2, 8),
         past=(f32(1, 2, 3, 4), f32(1, 2, 3, 4)), outs=3, q_num_heads=4, kv_num_heads=2, is_causal=1),
    attn("attention_opset23_past_present_mask", f32(1, 2, 2, 4), f32(1, 2, 2, 4), f32(1, 2, 2, 4),
         mask=f32(2, 5), past=(f32(1, 2, 3, 4), f32(1, 2, 3, 4)), outs=3),
    attn("attention_opset23_double", f32(1, 2, 3, 4), f32(1, 2, 4, 4), f32(1, 2, 4, 4), dtype=np.float64,
         is_causal=1),
    attn("attention_opset23_float16", f32(1, 2, 3, 4), f32(1, 2, 4, 4), f32(1, 2, 4, 4), dtype=np.float16),
    attn("attention_opset23_float16_mask_causal", f32(1, 2, 3, 8), f32(1, 2, 3, 8), f32(1, 2, 3, 8), dtype=np.float16,
         mask=f32(3, 3), is_causal=1),
    attn("attention_opset23_causal_cross", f32(1, 2, 3, 4), f32(1, 2, 5, 4), f32(1, 2, 5, 4), is_causal=1),
    attn("attention_opset23_3d_larger", f32(1, 40, 128), f32(1, 40, 128), f32(1, 40, 128), is_causal=1,
         q_num_heads=4, kv_num_heads=4),
    attn("attention_opset23_fully_masked_row", f32(1, 1, 2, 4), f32(1, 1, 3, 4), f32(1, 1, 3, 4),
         mask=np.array([[1, 0, 1], [0, 0, 0]], np.bool_)),
]
