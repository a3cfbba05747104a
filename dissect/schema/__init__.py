"""Family specs (YNL YAML dialect): loading, compiling, the registry."""

from .compile import Compiler
from .registry import MessageLayout, Registry, builtin_plugin_dir
from .spec import Spec, SpecError, load_spec, spec_from_dict

__all__ = [
    "Compiler",
    "MessageLayout",
    "Registry",
    "Spec",
    "SpecError",
    "builtin_plugin_dir",
    "load_spec",
    "spec_from_dict",
]
