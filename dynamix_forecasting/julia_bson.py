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


#: Largest file read: a DynaMix checkpoint is tens of kilobytes; the cap stops a huge or endless file
#: (a link to /dev/zero) from being read into memory.
MAX_FILE_BYTES = 64 << 20
#: Deepest nesting of documents and of tagged values (a real checkpoint nests about ten deep).
MAX_DEPTH = 100
#: Most array elements built from one file (the 3-D model has about 10 K).
MAX_ELEMENTS = 50_000_000


class BSONError(ValueError):
    """The file is not a BSON document this reader understands (malformed, truncated or hostile)."""


def _cstring(buf: bytes, pos: int, end: int) -> tuple[str, int]:
    stop = buf.find(b"\x00", pos, end)
    if stop < 0:
        raise BSONError(f"unterminated key at byte {pos}")
    return buf[pos:stop].decode("utf-8"), stop + 1


def _length(buf: bytes, pos: int, end: int, extra: int, what: str) -> int:
    """A length field at ``pos`` whose payload (plus ``extra`` bytes) must fit before ``end``."""
    if pos + 4 > end:
        raise BSONError(f"truncated {what} length at byte {pos}")
    (n,) = struct.unpack_from("<i", buf, pos)
    if n < 0 or pos + 4 + extra + n > end:
        raise BSONError(f"{what} length {n} at byte {pos} is negative or runs past the end of its document")
    return n


def _document(buf: bytes, pos: int, as_list: bool = False, depth: int = 0) -> tuple[Any, int]:
    if depth > MAX_DEPTH:
        raise BSONError(f"documents nested deeper than {MAX_DEPTH} levels")
    if pos + 4 > len(buf):
        raise BSONError(f"truncated BSON document at byte {pos}")
    (size,) = struct.unpack_from("<i", buf, pos)
    end = pos + size
    if size < 5 or end > len(buf):
        raise BSONError(f"corrupt BSON document at byte {pos}")
    pos += 4
    items: list[tuple[str, Any]] = []
    while pos < end - 1:
        kind = buf[pos]
        name, pos = _cstring(buf, pos + 1, end)
        if kind == 0x01:
            (value,) = struct.unpack_from("<d", buf, pos)
            pos += 8
        elif kind == 0x02:
            n = _length(buf, pos, end, 0, "string")
            if n < 1:
                raise BSONError(f"string length 0 at byte {pos} (a BSON string holds at least its terminator)")
            value = buf[pos + 4 : pos + 3 + n].decode("utf-8")
            pos += 4 + n
        elif kind in (0x03, 0x04):
            value, pos = _document(buf, pos, as_list=kind == 0x04, depth=depth + 1)
            if pos > end:
                raise BSONError(f"nested document runs past its parent at byte {pos}")
        elif kind == 0x05:
            n = _length(buf, pos, end, 1, "binary")
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
        if pos > end - 1:
            raise BSONError(f"element {name!r} runs past the end of its document at byte {end}")
        items.append((name, value))
    if pos != end - 1 or buf[pos] != 0:
        raise BSONError(f"corrupt BSON document ending at byte {end}")
    return ([v for _, v in items] if as_list else dict(items)), end


def read_bson(path: str | Path) -> dict[str, Any]:
    """Parse a BSON file into plain dicts, lists, bytes and numbers.

    Raises
    ------
    BSONError
        For a file over :data:`MAX_FILE_BYTES`, nesting deeper than :data:`MAX_DEPTH`, or any
        malformed, truncated or overrunning element.
    """
    try:
        with open(path, "rb") as f:
            buf = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise BSONError(f"cannot read {path}: {exc}") from exc
    if len(buf) > MAX_FILE_BYTES:
        raise BSONError(f"{path} is larger than {MAX_FILE_BYTES >> 20} MB; a DynaMix checkpoint is tens of KB")
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
    """Turn BSON.jl's tagged dicts into numpy arrays and :class:`JuliaStruct` objects.

    Each back-reference is resolved once (shared afterwards); a back-reference that leads back to
    itself, nesting deeper than :data:`MAX_DEPTH` and arrays whose stated size disagrees with their
    data raise :class:`BSONError`.
    """
    backrefs = doc.get("_backrefs", [])
    if not isinstance(backrefs, list):
        raise BSONError("'_backrefs' is not a list")
    cache: dict[int, Any] = {}
    in_progress: set[int] = set()
    elements = [0]

    def walk(node: Any, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise BSONError(f"values nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, list):
            return [walk(n, depth + 1) for n in node]
        if not isinstance(node, dict):
            return node
        tag = node.get("tag")
        if tag == "backref":
            ref = node.get("ref")
            if not isinstance(ref, int) or not 1 <= ref <= len(backrefs):
                raise BSONError(f"back-reference {ref!r} outside the {len(backrefs)} stored values")
            if ref in in_progress:
                raise BSONError(f"back-reference {ref} refers to itself")
            if ref not in cache:
                in_progress.add(ref)
                cache[ref] = walk(backrefs[ref - 1], depth + 1)
                in_progress.discard(ref)
            return cache[ref]
        if tag == "array":
            size = walk(node.get("size"), depth + 1)
            size = list(size) if isinstance(size, list | tuple) else [size]
            if not size or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in size):
                raise BSONError(f"array size {size!r} is not a list of non-negative ints")
            count = int(np.prod(size, dtype=np.float64))
            elements[0] += count
            if count > MAX_ELEMENTS or elements[0] > MAX_ELEMENTS:
                raise BSONError(f"arrays of more than {MAX_ELEMENTS} elements in all")
            data = node.get("data")
            if isinstance(data, bytes):
                dtype = _JULIA_DTYPES.get(_type_name(walk(node.get("type"), depth + 1)))
                if dtype is None:
                    raise BSONError(f"unsupported Julia array element type {_type_name(node.get('type'))}")
                if len(data) != count * np.dtype(dtype).itemsize:
                    raise BSONError(f"array of size {size} holds {len(data)} bytes of {np.dtype(dtype).name}")
                return np.frombuffer(data, dtype=dtype).reshape(size, order="F").copy()
            items = walk(data, depth + 1)
            if not isinstance(items, list) or len(items) != count:
                raise BSONError(f"array of size {size} holds {len(items) if isinstance(items, list) else '?'} items")
            if len(size) == 1:
                return items
            return np.array(items, dtype=object).reshape(size, order="F")
        if tag == "struct":
            return JuliaStruct(_type_name(walk(node.get("type"), depth + 1)), walk(node.get("data", []), depth + 1))
        if tag == "datatype":
            return node
        if tag == "symbol":
            return node.get("name")
        if tag == "tuple":
            return tuple(walk(node.get("data", []), depth + 1))
        if tag == "ref":
            return walk(node.get("data"), depth + 1)
        return {k: walk(v, depth + 1) for k, v in node.items() if k != "_backrefs"}

    return walk(doc, 0)


def _find_struct(node: Any, type_name: str) -> JuliaStruct | None:
    """First struct named ``type_name``, depth first; shared values (back-references) are visited once."""
    seen: set[int] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, JuliaStruct):
            if item.type_name == type_name:
                return item
            children = item.fields
        elif isinstance(item, dict):
            children = list(item.values())
        elif isinstance(item, list | tuple):
            children = list(item)
        else:
            continue
        stack.extend(reversed(children))
    return None


def dynamix_state_dict_from_bson(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read a Julia DynaMix checkpoint as a PyTorch state dict and an architecture dict.

    See :func:`_state_dict_from_tree`; every malformed file raises :class:`BSONError` (a ``ValueError``).
    """
    tree = resolve(read_bson(path))
    try:
        return _state_dict_from_tree(tree, path)
    except BSONError:
        raise
    except (TypeError, ValueError, IndexError, KeyError, AttributeError) as exc:
        raise BSONError(
            f"{path} is not a DynaMix checkpoint this reader understands ({type(exc).__name__}: {exc})"
        ) from exc


def _state_dict_from_tree(tree: Any, path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
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
    model = _find_struct(tree, "DynaMix")
    if model is None:
        raise BSONError(f"{path} holds no Julia DynaMix model (no struct named 'DynaMix' found).")
    a_list, w_list, h_list, gating, n_obs, n_experts, p_relu = model.fields[:7]
    if not isinstance(gating, JuliaStruct) or len(gating.fields) != 7:
        raise BSONError(f"{path}: unexpected layout of the Julia GatingNetwork struct.")
    conv, temp1, d_mat, mlp1, mlp2, temp2, sigma = gating.fields
    conv_weight, conv_bias = conv.fields[1], conv.fields[2]
    # Sizes come from the arrays actually present; the stored counts must agree with them.
    if not (isinstance(a_list, list) and a_list and len(a_list) == len(w_list) == len(h_list)):
        raise BSONError(f"{path}: the expert lists A, W, h are missing, empty or of different lengths.")
    if int(n_experts) != len(a_list):
        raise BSONError(f"{path}: the model states {n_experts} experts but stores {len(a_list)}.")
    m_latent = int(np.asarray(a_list[0]).shape[0])
    if not 0 <= int(p_relu) <= m_latent:
        raise BSONError(f"{path}: P = {p_relu} ReLU units is outside [0, M = {m_latent}].")
    if not 1 <= int(n_obs) <= m_latent:
        raise BSONError(f"{path}: N = {n_obs} observed channels is outside [1, M = {m_latent}].")
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
