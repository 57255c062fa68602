"""The accepted program (docs/contracts.md): what Accept inserts and `codeact run --program` prints.

`build` turns a run's steps into one typed function, `prune` decides what exploration goes,
`imports` merges the program's imports into a file, `placement` finds where the function goes in
that file, and `forms` reads a stored program back (its parts, the "as a script" form).
"""

from codeact_lsp.engine.program.build import (
    Program,
    ProgramError,
    build_program,
    make_program,
    program_steps,
)
from codeact_lsp.engine.program.forms import as_script, parse_program, renamed

__all__ = [
    "Program",
    "ProgramError",
    "as_script",
    "build_program",
    "make_program",
    "parse_program",
    "program_steps",
    "renamed",
]
