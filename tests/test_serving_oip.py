"""The Open Inference Protocol v2 codec (aiaas_jupyter.serving.oip), in-process."""

from __future__ import annotations

import json

import numpy as np
import pytest

from aiaas_jupyter.serving import oip

SAMPLES = {
    "BOOL": [[True, False, True], [False, False, True]],
    "UINT8": [[0, 255, 7], [1, 2, 3]],
    "UINT16": [[0, 65535, 7], [1, 2, 3]],
    "UINT32": [[0, 2**32 - 1, 7], [1, 2, 3]],
    "UINT64": [[0, 2**64 - 1, 7], [1, 2, 3]],
    "INT8": [[-128, 127, 0], [1, -2, 3]],
    "INT16": [[-32768, 32767, 0], [1, -2, 3]],
    "INT32": [[-2**31, 2**31 - 1, 0], [1, -2, 3]],
    "INT64": [[-2**63, 2**63 - 1, 0], [1, -2, 3]],
    "FP16": [[0.5, -1.25, 65504.0], [1.0, 2.0, 3.0]],
    "FP32": [[0.1, -1.5, 3.25e10], [1.0, 2.0, 3.0]],
    "FP64": [[0.1, -1.5, 1e300], [1.0, 2.0, 3.0]],
    "BYTES": [["a", "ü", ""], ["日本", "x y", "{}"]],
}


def test_all_thirteen_datatypes_are_covered():
    assert set(SAMPLES) == set(oip.DATATYPES) and len(oip.DATATYPES) == 13


@pytest.mark.parametrize("datatype", list(SAMPLES))
def test_round_trip_flat_and_nested(datatype):
    want = np.array(SAMPLES[datatype], dtype=oip.DATATYPES[datatype])
    flat = want.reshape(-1).tolist()
    for data in (flat, want.tolist()):  # row-major flat, and nested as some clients send
        tensor = json.loads(json.dumps({"name": "x", "shape": [2, 3], "datatype": datatype, "data": data}))
        name, got = oip.decode_tensor(tensor)
        assert name == "x" and got.shape == (2, 3) and got.dtype == want.dtype
        assert got.tolist() == want.tolist()
    encoded = json.loads(json.dumps(oip.encode_tensor("y", want)))
    assert encoded == {"name": "y", "shape": [2, 3], "datatype": datatype, "data": flat}
    assert oip.decode_tensor(encoded)[1].tolist() == want.tolist()


def test_row_major_order():
    arr = np.arange(24, dtype=np.int32).reshape(2, 3, 4)
    t = oip.encode_tensor("a", arr)
    assert t["data"] == list(range(24)) and t["shape"] == [2, 3, 4]
    assert np.array_equal(oip.decode_tensor(t)[1], arr)
    assert np.array_equal(oip.decode_tensor(oip.encode_tensor("t", arr.T))[1], arr.T)  # non-contiguous


def test_encode_bytes_and_unicode_arrays():
    assert oip.encode_tensor("s", np.array(["a", "b"]))["datatype"] == "BYTES"
    assert oip.encode_tensor("s", np.array([b"x", "y"], dtype=object))["data"] == ["x", "y"]


@pytest.mark.parametrize("tensor, message", [
    ({"name": "x", "shape": [2], "datatype": "FP128", "data": [1, 2]}, "unknown datatype 'FP128'"),
    ({"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3]}, "needs 4 values, got 3"),
    ({"name": "x", "shape": [1], "datatype": "FP32", "data": ["1.5"]}, "must be numbers"),
    ({"name": "x", "shape": [1], "datatype": "UINT8", "data": [300]}, "out of range for UINT8"),
    ({"name": "x", "shape": [1], "datatype": "INT8", "data": [-129]}, "out of range for INT8"),
    ({"name": "x", "shape": [1], "datatype": "UINT32", "data": [-1]}, "out of range for UINT32"),
    ({"name": "x", "shape": [1], "datatype": "UINT64", "data": [2**64]}, "out of range for UINT64"),
    ({"name": "x", "shape": [2], "datatype": "INT64", "data": [-1, 2**63]}, "out of range for INT64"),
    ({"name": "x", "shape": [1], "datatype": "INT64", "data": [1.5]}, "must be integers"),
    ({"name": "x", "shape": [1], "datatype": "FP16", "data": [1e6]}, "out of range for FP16"),
    ({"name": "x", "shape": [1], "datatype": "BOOL", "data": [2]}, "true/false"),
    ({"name": "x", "shape": [1], "datatype": "BYTES", "data": [3]}, "UTF-8 strings"),
    ({"name": "x", "shape": [-1], "datatype": "FP32", "data": []}, "non-negative integers"),
    ({"name": "x", "shape": "2", "datatype": "FP32", "data": [1, 2]}, "non-negative integers"),
    ({"name": "", "shape": [1], "datatype": "FP32", "data": [1]}, "non-empty string 'name'"),
    ({"name": "x", "shape": [1], "datatype": "FP32", "data": 1}, "'data' must be a list"),
    ({"name": "x", "shape": [2], "datatype": "FP32", "data": [1, [2]]}, "list of numbers"),
    ("x", "must be an object"),
])
def test_bad_tensors_are_codec_errors(tensor, message):
    with pytest.raises(oip.CodecError, match=message.replace("(", r"\(").replace(")", r"\)")):
        oip.decode_tensor(tensor)


def test_integral_floats_are_accepted_for_integer_types():
    assert oip.decode_tensor({"name": "x", "shape": [2], "datatype": "INT32", "data": [1.0, 2.0]})[1].tolist() == [1, 2]


def test_empty_tensor():
    name, arr = oip.decode_tensor({"name": "x", "shape": [0, 4], "datatype": "FP32", "data": []})
    assert arr.shape == (0, 4) and arr.dtype == np.float32


@pytest.mark.parametrize("body, message", [
    ([], "JSON object"),
    ({}, "non-empty list"),
    ({"inputs": []}, "non-empty list"),
    ({"inputs": [{"name": "a", "shape": [1], "datatype": "FP32", "data": [1]}] * 2}, "unique"),
    ({"id": 3, "inputs": [{"name": "a", "shape": [1], "datatype": "FP32", "data": [1]}]}, "'id' must be a string"),
    ({"outputs": [{"nome": "p"}], "inputs": [{"name": "a", "shape": [1], "datatype": "FP32", "data": [1]}]},
     "'outputs'"),
])
def test_bad_requests(body, message):
    with pytest.raises(oip.CodecError, match=message):
        oip.decode_request(body)


def test_request_and_response():
    tensors, outputs, req_id = oip.decode_request({
        "id": "r1", "outputs": [{"name": "predict_proba"}],
        "inputs": [{"name": "a", "shape": [1, 2], "datatype": "FP64", "data": [1, 2]}]})
    assert req_id == "r1" and outputs == ["predict_proba"] and tensors[0][1].shape == (1, 2)
    resp = oip.encode_response("m", "3", {"predict": np.array([1, 2])}, "r1")
    assert resp == {"model_name": "m", "model_version": "3", "id": "r1",
                    "outputs": [{"name": "predict", "shape": [2], "datatype": "INT64", "data": [1, 2]}]}
