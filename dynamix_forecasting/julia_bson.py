"""Read DynaMix checkpoints saved by the authors' Julia code (``BSON.jl``).

BSON.jl writes ordinary BSON documents in which Julia values are tagged dicts: arrays
(``{"tag": "array", "type", "size", "data"}``, column-major bytes), structs
(``{"tag": "struct", "type", "data": [fields...]}``), data types and back-references into a
top-level ``_backrefs`` list. :func:`read_bson` parses the bytes and :func:`resolve` turns the tags
into numpy arrays and :class:`JuliaStruct` objects; :func:`dynamix_state_dict_from_bson` maps the
Julia ``DynaMix`` struct onto the PyTorch state-dict names.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

_JULIA_DTYPES = {
    "Float32": np.float32,
    "Float64": np.float64,
    "Float16": np.float16,
    "Int64": np.int64,
    "Int32": np.int32,
    "UInt8": np.uint8,
    "Bool": np.bool_,
}


class BSONError(ValueError):
    """The file is not a BSON document this reader understands."""


def _cstring(buf: bytes, pos: int) -> tuple[str, int]:
    end = buf.index(b"\x00", pos)
    return buf[pos:end].decode("utf-8"), end + 1


def _document(buf: bytes, pos: int, as_list: bool = False) -> tuple[Any, int]:
    (size,) = struct.unpack_from("<i", buf, pos)
    end = pos + size
    if size < 5 or end > len(buf):
        raise BSONError(f"corrupt BSON document at byte {pos}")
    pos += 4
    items: list[tuple[str, Any]] = []
    while pos < end - 1:
        kind = buf[pos]
        name, pos = _cstring(buf, pos + 1)
        if kind == 0x01:
            (value,) = struct.unpack_from("<d", buf, pos)
            pos += 8
        elif kind == 0x02:
            (n,) = struct.unpack_from("<i", buf, pos)
            value = buf[pos + 4 : pos + 3 + n].decode("utf-8")
            pos += 4 + n
        elif kind in (0x03, 0x04):
            value, pos = _document(buf, pos, as_list=kind == 0x04)
        elif kind == 0x05:
            (n,) = struct.unpack_from("<i", buf, pos)
            value = bytes(buf[pos + 5 : pos + 5 + n])
            pos += 5 + n
        elif kind == 0x08:
            value = buf[pos] != 0
            pos += 1
        elif kind == 0x0A:
            value = None
        elif kind == 0x10:
            (value,) = struct.unpack_from("<i", buf, pos)
            pos += 4
        elif kind in (0x09, 0x12):
            (value,) = struct.unpack_from("<q", buf, pos)
            pos += 8
        elif kind == 0x11:
            (value,) = struct.unpack_from("<Q", buf, pos)
            pos += 8
        else:
            raise BSONError(f"unsupported BSON element type 0x{kind:02x} for key {name!r}")
        items.append((name, value))
    if pos != end - 1 or buf[pos] != 0:
        raise BSONError(f"corrupt BSON document ending at byte {end}")
    return ([v for _, v in items] if as_list else dict(items)), end


def read_bson(path: str | Path) -> dict[str, Any]:
    """Parse a BSON file into plain dicts, lists, bytes and numbers."""
    buf = Path(path).read_bytes()
    try:
        doc, end = _document(buf, 0)
    except (struct.error, IndexError, UnicodeDecodeError) as exc:
        raise BSONError(f"{path} is not a valid BSON file ({exc})") from exc
    if end != len(buf):
        raise BSONError(f"{path} has {len(buf) - end} trailing bytes after the BSON document")
    return doc


@dataclass
class JuliaStruct:
    """A Julia struct instance: its type name and its fields in declaration order."""

    type_name: str
    fields: list[Any] = field(default_factory=list)


def _type_name(datatype: Any) -> str:
    if isinstance(datatype, dict) and datatype.get("tag") == "datatype":
        name = datatype.get("name", [])
        return name[-1] if isinstance(name, list) and name else str(name)
    return str(datatype)


def resolve(doc: dict[str, Any]) -> dict[str, Any]:
    """Turn BSON.jl's tagged dicts into numpy arrays and :class:`JuliaStruct` objects."""
    backrefs = doc.get("_backrefs", [])
    cache: dict[int, Any] = {}

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(n) for n in node]
        if not isinstance(node, dict):
            return node
        tag = node.get("tag")
        if tag == "backref":
            ref = node["ref"]
            if ref not in cache:
                cache[ref] = walk(backrefs[ref - 1])
            return cache[ref]
        if tag == "array":
            size = [int(s) for s in walk(node["size"])]
            data = node["data"]
            if isinstance(data, bytes):
                dtype = _JULIA_DTYPES.get(_type_name(walk(node["type"])))
                if dtype is None:
                    raise BSONError(f"unsupported Julia array element type {_type_name(node['type'])}")
                return np.frombuffer(data, dtype=dtype).reshape(size, order="F").copy()
            items = walk(data)
            if len(size) == 1:
                return items
            return np.array(items, dtype=object).reshape(size, order="F")
        if tag == "struct":
            return JuliaStruct(_type_name(walk(node["type"])), walk(node["data"]))
        if tag == "datatype":
            return node
        if tag == "symbol":
            return node["name"]
        if tag == "tuple":
            return tuple(walk(node["data"]))
        if tag == "ref":
            return walk(node["data"])
        return {k: walk(v) for k, v in node.items() if k != "_backrefs"}

    return walk(doc)


def _find_struct(node: Any, type_name: str) -> JuliaStruct | None:
    if isinstance(node, JuliaStruct):
        if node.type_name == type_name:
            return node
        children = node.fields
    elif isinstance(node, dict):
        children = list(node.values())
    elif isinstance(node, list | tuple):
        children = list(node)
    else:
        return None
    for child in children:
        found = _find_struct(child, type_name)
        if found is not None:
            return found
    return None


def dynamix_state_dict_from_bson(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read a Julia DynaMix checkpoint as a PyTorch state dict and an architecture dict.

    The Julia model stores the experts as lists ``A_MoE``, ``W_MoE``, ``h_MoE``; a Flux ``Conv`` whose
    weight is ``(width, in, out)`` and applied as a true convolution (so its time axis is reversed
    relative to ``torch.nn.Conv1d``); and an identity observation model whose ``L`` is
    ``(M - N, N)`` with ``B[:, N:] = L^T``.

    Returns
    -------
    state_dict : dict of str to numpy.ndarray
        Arrays named and shaped as the released safetensors checkpoint.
    architecture : dict
        ``M``, ``N``, ``Experts``, ``P``, ``expert_type`` and ``probabilistic_expert``.
    """
    tree = resolve(read_bson(path))
    model = _find_struct(tree, "DynaMix")
    if model is None:
        raise BSONError(f"{path} holds no Julia DynaMix model (no struct named 'DynaMix' found).")
    a_list, w_list, h_list, gating, n_obs, n_experts, p_relu = model.fields[:7]
    if not isinstance(gating, JuliaStruct) or len(gating.fields) != 7:
        raise BSONError(f"{path}: unexpected layout of the Julia GatingNetwork struct.")
    conv, temp1, d_mat, mlp1, mlp2, temp2, sigma = gating.fields
    conv_weight, conv_bias = conv.fields[1], conv.fields[2]
    m_latent = int(np.asarray(a_list[0]).shape[0])
    state: dict[str, np.ndarray] = {}
    for j, (a, w, h) in enumerate(zip(a_list, w_list, h_list, strict=True)):
        state[f"experts.{j}.A"] = np.asarray(a, dtype=np.float32)
        state[f"experts.{j}.W"] = np.asarray(w, dtype=np.float32)
        state[f"experts.{j}.h"] = np.asarray(h, dtype=np.float32)
    # Flux weight (width, in, out), flipped in time -> torch (out, in, width).
    state["gating_network.conv.weight"] = np.ascontiguousarray(
        np.asarray(conv_weight, dtype=np.float32).transpose(2, 1, 0)[:, :, ::-1]
    )
    state["gating_network.conv.bias"] = np.asarray(conv_bias, dtype=np.float32).reshape(-1)
    state["gating_network.softmax_temp1"] = np.asarray(temp1, dtype=np.float32).reshape(1)
    state["gating_network.D"] = np.asarray(d_mat, dtype=np.float32)
    state["gating_network.mlp_layer1.weight"] = np.asarray(mlp1, dtype=np.float32)
    state["gating_network.mlp_layer1.bias"] = np.zeros(int(n_experts), dtype=np.float32)
    state["gating_network.mlp_layer2.weight"] = np.asarray(mlp2, dtype=np.float32)
    state["gating_network.mlp_layer2.bias"] = np.zeros(int(n_experts), dtype=np.float32)
    state["gating_network.softmax_temp2"] = np.asarray(temp2, dtype=np.float32).reshape(1)
    state["gating_network.sigma"] = np.asarray(sigma, dtype=np.float32).reshape(-1)

    observation = _find_struct(tree, "Identity")
    n_obs = int(n_obs)
    b_mat = np.zeros((n_obs, m_latent), dtype=np.float32)
    # The first N columns are overwritten by the observation itself; store them as identity,
    # as the released safetensors conversion does.
    b_mat[:, :n_obs] = np.eye(n_obs, dtype=np.float32)
    if observation is not None:
        want = (m_latent - n_obs, n_obs)
        l_mat = next((f for f in observation.fields if isinstance(f, np.ndarray) and f.shape == want), None)
        if l_mat is not None:
            b_mat[:, n_obs:] = np.asarray(l_mat, dtype=np.float32).T
    state["B"] = b_mat
    architecture = {
        "M": m_latent,
        "N": n_obs,
        "Experts": int(n_experts),
        "P": int(p_relu),
        "hidden_dim": 50,
        "expert_type": "almost_linear_rnn",
        "probabilistic_expert": False,
    }
    return state, architecture
