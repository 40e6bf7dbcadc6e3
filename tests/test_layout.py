"""The shape of the package: no import cycle, nothing imports upward, no god files or god functions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "asr"
MAX_FILE_LINES = 300
MAX_FUNCTION_LINES = 50  # longer only with a "# long: <reason>" comment on the def line
DOORS = {"asr.transcribe", "asr.evaluate", "asr.train", "asr.export"}  # the commands people type: nothing imports them


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def is_type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imported_modules(path: Path) -> set[str]:
    """asr modules that `path` imports, at module level or inside functions (not under TYPE_CHECKING)."""
    out: set[str] = set()

    def visit(node: ast.AST) -> None:
        if is_type_checking_block(node):
            return
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == "asr")
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "asr":
            for a in node.names:  # `from asr.training import distributed` imports a module
                sub = f"{node.module}.{a.name}"
                out.add(sub if sub in MODULES else node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return out


def graph() -> dict[str, set[str]]:
    """Module -> the modules importing it runs first: those named, and the packages above them (a package's
    __init__ runs before its modules) unless the importer is inside that package."""
    edges: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        targets = set()
        for target in imported_modules(path):
            parts = target.split(".")
            for k in range(2, len(parts) + 1):
                parent = ".".join(parts[:k])
                if parent in MODULES and not (name + ".").startswith(parent + ".") and parent != name:
                    targets.add(parent)
        edges[name] = targets
    return edges


def test_there_is_no_import_cycle():
    edges, state, stack = graph(), {}, []

    def visit(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == "open":
                cycle = stack[stack.index(nxt):] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for module in sorted(edges):
        if module not in state:
            visit(module)


@pytest.mark.parametrize("module, may_import", [
    ("asr.audio", set()),
    ("asr.features", {"asr.audio"}),
    ("asr.text", set()),
    ("asr.augment", {"asr.audio", "asr.data"}),
    ("asr.batching", set()),  # indices and lengths only
    ("asr.manifest", {"asr.text"}),  # JSONL utterances: no torch, no audio
    ("asr.data", {"asr.audio", "asr.batching", "asr.corpora", "asr.features", "asr.manifest", "asr.text"}),
    ("asr.corpora", {"asr.audio", "asr.manifest", "asr.stdio"}),  # importers: corpora in, manifests out (`python -m asr.data`)
    ("asr.model", {"asr.features"}),  # never the decoders, the loss or the optimiser
    ("asr.metrics", {"asr.text"}),
    ("asr.recognizer", {"asr.audio", "asr.data", "asr.features", "asr.model", "asr.text"}),  # the core: no subsystem
    ("asr.atomic", {"asr.manifest"}),  # files written whole or not at all
    ("asr.checkpoint", {"asr.atomic", "asr.features", "asr.manifest", "asr.model", "asr.onnx_backend", "asr.quantize",
                        "asr.recognizer", "asr.text"}),
    ("asr.quantize", set()),  # weights as stored: torch alone
    ("asr.stdio", set()),  # stdout gone or full: the standard library alone
    ("asr.onnx_backend", {"asr.model"}),  # onnx/onnxruntime imported lazily; the checkpoint builds the Recognizer
    ("asr.decoding", {"asr.text", "asr.lm", "asr.manifest"}),  # plain functions over log-probs; JSON as manifests
    ("asr.lm", {"asr.text", "asr.data", "asr.manifest"}),
    ("asr.longform", {"asr.audio", "asr.data", "asr.decoding", "asr.features", "asr.model",
                      "asr.recognizer",
                      "asr.text"}),
    ("asr.streaming", {"asr.audio", "asr.decoding", "asr.features", "asr.longform", "asr.model",
                       "asr.recognizer", "asr.text"}),
    ("asr.serve", {"asr.audio", "asr.batching", "asr.checkpoint", "asr.cli", "asr.decoding", "asr.lm",
                   "asr.longform", "asr.manifest", "asr.recognizer",
                   "asr.streaming"}),  # core modules and subsystems, never a door
])
def test_nothing_imports_upward(module, may_import):
    for name, targets in graph().items():
        if name == module or name.startswith(module + "."):
            outside = {t for t in targets if not t.startswith(module)}
            allowed = {t for t in outside if any(t == m or t.startswith(m + ".") for m in may_import)}
            assert outside <= allowed, f"{name} imports {sorted(outside - allowed)}"


def test_no_module_imports_a_door():
    for name, targets in graph().items():
        assert not targets & DOORS, f"{name} imports the command-line door(s) {sorted(targets & DOORS)}"


def test_each_subpackage_names_its_public_api():
    for name, path in MODULES.items():
        if path.name == "__init__.py" and name != "asr":
            tree = ast.parse(path.read_text())
            assert ast.get_docstring(tree), f"{name}/__init__.py has no docstring"
            exported = [n for n in tree.body if isinstance(n, ast.Assign) and ast.unparse(n.targets[0]) == "__all__"]
            assert exported, f"{name}/__init__.py has no __all__"


@pytest.mark.parametrize("path", MODULES.values(), ids=MODULES.keys())
def test_files_and_functions_stay_small(path):
    lines = path.read_text().splitlines()
    assert len(lines) <= MAX_FILE_LINES, f"{path.name}: {len(lines)} lines"
    for node in ast.walk(ast.parse("\n".join(lines))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            reason = "# long:" in lines[node.lineno - 1]
            assert length <= MAX_FUNCTION_LINES or reason, f"{path.name}: {node.name} is {length} lines"


def test_only_the_train_door_uses_the_training_subsystem():
    for name, targets in graph().items():
        if not (name == "asr.train" or name.startswith("asr.training")):
            assert not any(t.startswith("asr.training") for t in targets), f"{name} imports {sorted(targets)}"


def test_only_asr_audio_reads_or_writes_audio_files():
    """One home for audio input: libsndfile (soundfile) and the resampler are called from asr/audio/ only."""
    for name, path in MODULES.items():
        if name == "asr.audio" or name.startswith("asr.audio."):
            continue
        tree = ast.parse(path.read_text())
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert not imported & {"soundfile", "soxr", "audioread"}, f"{name} reads audio itself: use asr.audio"
