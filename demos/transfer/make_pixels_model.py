#!/usr/bin/python3
"""Writes demos/transfer/pixels.onnx: the transfer demo's image-to-tensor model.

The demo needs each captured frame as float32 numbers (FineTuner.fit takes tensors, not frames) and wants the
conversion done exactly as the classifier sees a frame: Tensor.fromImage's GPU resize, crop and normalize. A
session of this model fed `Tensor.fromImage(frame, ...)` returns the converted tensor, read back once per capture,
with no JavaScript loop over pixels. One Identity node: input `image` float32 [N, 3, H, W] (symbolic) to `pixels`.

    /usr/bin/python3 demos/transfer/make_pixels_model.py
"""
import os

import onnx
from onnx import TensorProto, helper

dims = ['N', 3, 'H', 'W']
graph = helper.make_graph(
    [helper.make_node('Identity', ['image'], ['pixels'], name='pixels')],
    'pixels',
    [helper.make_tensor_value_info('image', TensorProto.FLOAT, dims)],
    [helper.make_tensor_value_info('pixels', TensorProto.FLOAT, dims)],
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)], producer_name='edgekit demos/transfer')
model.ir_version = 7
onnx.checker.check_model(model)
onnx.save(model, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'pixels.onnx'))
