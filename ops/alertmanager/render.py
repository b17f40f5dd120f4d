#!/usr/bin/env python3
"""Writes an Alertmanager configuration with its ${NAME} placeholders taken from the
environment: Alertmanager itself reads no environment variables.

    VIGIL_ALERT_PAGE_URL=https://... VIGIL_ALERT_TICKET_URL=https://... \\
        python3 ops/alertmanager/render.py --out /etc/alertmanager/alertmanager.yml

Exits 2, naming them, while a placeholder's variable is unset or empty, so that a receiver
is never left without its URL. A value is written as a double-quoted YAML string, so it
cannot change the file's structure. Standard library only.
"""

import argparse
import json
import os
import re
import sys
from pathlib import Path

TEMPLATE = Path(__file__).resolve().with_name("alertmanager.yml")
PLACEHOLDER = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)\}")


def render(text, env):
    """`text` with every ${NAME} replaced by env[NAME]; raises KeyError listing the names
    that have no value."""
    missing = sorted({m.group(1) for m in PLACEHOLDER.finditer(text) if not env.get(m.group(1))})
    if missing:
        raise KeyError(", ".join(missing))
    return PLACEHOLDER.sub(lambda m: json.dumps(env[m.group(1)]), text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--template", type=Path, default=TEMPLATE,
                    help="the configuration with placeholders (default: %(default)s)")
    ap.add_argument("--out", type=Path, required=True, help="where to write the result")
    args = ap.parse_args()
    try:
        text = render(args.template.read_text(), os.environ)
    except KeyError as e:
        print(f"render.py: set {e.args[0]} (the receivers' webhook URLs) in the environment",
              file=sys.stderr)
        return 2
    except OSError as e:
        print(f"render.py: {e}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
