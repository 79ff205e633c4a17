"""The artifact codec: model objects ↔ the bytes a registry version stores.

Training encodes a fitted model on the worker (:mod:`.codec`: skops for scikit-learn,
safetensors + ONNX for torch) and the kernel's ``load_model`` and the model server decode
those bytes again, through the safe loaders only (:mod:`.trusted_types`, :mod:`.tree_check`,
:mod:`.onnx_model`). The registry itself only stores and checksums bytes, so the codec is not
part of it: it sits below training and serving, beside the registry, and neither imports the
other.

Nothing is imported here, so importing the package stays as cheap as importing one module.
"""
