"""The typed codec, from wherever this package was loaded: as part of codeact_lsp in the server,
by path (as the sibling `sandbox/codec.py`) in the tool host's interpreter."""

from __future__ import annotations

import importlib.util
import os
import sys
import types


def _load() -> types.ModuleType:
    if __package__ and __package__.startswith("codeact_lsp."):
        from codeact_lsp.sandbox import codec

        return codec
    name = "_codeact_codec"
    if name in sys.modules:
        return sys.modules[name]
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(os.path.dirname(os.path.dirname(here)), "sandbox", "codec.py")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


codec = _load()
