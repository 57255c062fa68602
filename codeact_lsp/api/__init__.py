"""The Python API: `CodeAct(signature, tools=[...])` for scripts, notebooks and tests.

from codeact_lsp import CodeAct

def factorial(n: int) -> int:
    "n! for n >= 0."
    return 1 if n <= 1 else n * factorial(n - 1)

with CodeAct("n: int -> factorial: int", tools=[factorial], model="openai/gpt-4o-mini") as act:
    print(act(n=5).factorial)  # 120
"""

from codeact_lsp.api.approval import Approve, PendingStep, Reject, Reviewer
from codeact_lsp.api.codeact import CodeAct
from codeact_lsp.api.progress import Progress
from codeact_lsp.api.result import Result, RunError
from codeact_lsp.api.scripted import scripted
from codeact_lsp.api.session import Session

__all__ = [
    "Approve",
    "CodeAct",
    "PendingStep",
    "Progress",
    "Reject",
    "Result",
    "Reviewer",
    "RunError",
    "Session",
    "scripted",
]
