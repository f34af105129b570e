"""Regenerate the committed files that are derived from code.

    python tools/gen_docs.py           # rewrite schemas/deployc.schema.json, docs/spec.md, docs/rules.md
                                       # and README.md's "Will it serve my traffic?" console example
    python tools/gen_docs.py --check   # exit 1 if any of them is stale (what the tests check)

Only built-in backends' option schemas go into the committed files, whatever else is installed.
"""

from __future__ import annotations

import argparse
import functools
import subprocess
import sys
from pathlib import Path

from deployc.plugins import default_registry
from deployc.render.docs import rules_markdown, spec_markdown
from deployc.spec.schema import schema_text

REPO = Path(__file__).resolve().parent.parent
BUILTIN_DISTRIBUTION = "deployc"


def builtin_fragments() -> dict[str, dict[str, object]]:
    """Option schemas of the backends shipped in this distribution."""
    registry = default_registry()
    return {name: loaded.info.options_schema for name, loaded in registry.backends.items()
            if loaded.source.distribution == BUILTIN_DISTRIBUTION}


EXAMPLE = "docs/examples/chat-8b-l4.toml"
PLAN_COMMAND = ("plan", EXAMPLE)
SIZE_COMMAND = ("size", EXAMPLE, "--gpus", "L4,L40S,A100-80GB,H100")
CONSOLE_OPENING = f"```console\n$ deployc {' '.join(PLAN_COMMAND)}"


def _output(argv: tuple[str, ...]) -> list[str]:
    done = subprocess.run([sys.executable, "-m", "deployc", *argv], cwd=REPO, capture_output=True, text=True,
                          check=False)
    return done.stdout.splitlines()


def readme_example(readme: str) -> str:
    """README.md with its console example as the commands print it now (the plan up to its verdict, then
    its diagnostics; the whole size report)."""
    plan = _output(PLAN_COMMAND)
    verdict = next(i for i, line in enumerate(plan) if line.startswith("  verdict:"))
    block = [f"$ deployc {' '.join(PLAN_COMMAND)}      # exit code 1", *plan[:verdict + 1], "", "  ...",
             *plan[plan.index("diagnostics:"):], f"$ deployc {' '.join(SIZE_COMMAND)}", *_output(SIZE_COMMAND)]
    start = readme.index(CONSOLE_OPENING)
    end = readme.index("```\n", start + len(CONSOLE_OPENING))
    return readme[:start] + "```console\n" + "\n".join(block) + "\n" + readme[end:]


@functools.cache
def generated() -> dict[Path, str]:
    """Each derived file and the text it should hold."""
    fragments = builtin_fragments()
    readme = REPO / "README.md"
    return {
        REPO / "schemas" / "deployc.schema.json": schema_text(fragments),
        REPO / "docs" / "spec.md": spec_markdown(fragments),
        REPO / "docs" / "rules.md": rules_markdown(),
        readme: readme_example(readme.read_text()),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="report stale files instead of writing them")
    args = parser.parse_args()
    stale = []
    for path, text in generated().items():
        if path.exists() and path.read_text() == text:
            continue
        stale.append(path)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    for path in stale:
        print(f"{'stale' if args.check else 'wrote'}: {path.relative_to(REPO)}")
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
