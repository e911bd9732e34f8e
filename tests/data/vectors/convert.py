"""Regenerate the codec test vectors in this directory from the WAMP spec test suite.

Usage (from anywhere)::

    python tests/data/vectors/convert.py [TESTSUITE_DIR]

``TESTSUITE_DIR`` defaults to ``../shared/wamp-spec/testsuite`` relative to the
project root (i.e. ``/work/shared/wamp-spec/testsuite`` for ``/work/main``).

Only the facts are kept from each sample of ``singlemessage/basic/*.json`` and
of the selected ``singlemessage/advanced`` files: the hex bytes for the json,
msgpack and cbor serializers and the ``expected_attributes``, plus a ``source``
reference (``<profile>/<file>#<sample index>``) for test ids. Descriptions,
notes and the per-language validation/construction snippets are dropped, as are
samples without bytes/expected attributes (the ``wmsg`` options-validation
cases). Output: one ``<message type>.json`` per WAMP message type, a list of
``{"source", "json", "msgpack", "cbor", "expected"}`` objects.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PROJECT_ROOT = HERE.parents[2]
DEFAULT_SUITE = PROJECT_ROOT.parent / "shared" / "wamp-spec" / "testsuite"

SERIALIZERS = ("json", "msgpack", "cbor")
# advanced/eventreceived.json is left out: EVENT_RECEIVED (337) is not a
# message our codec supports.
ADVANCED = ("cancel", "interrupt", "publish_with_publisher_exclusion_disabled")


def source_files(suite: Path) -> list[tuple[str, Path]]:
    single = suite / "singlemessage"
    basic = sorted((single / "basic").glob("*.json"))
    advanced = [single / "advanced" / f"{name}.json" for name in ADVANCED]
    return [(path.parent.name, path) for path in basic + advanced]


def convert_sample(source: str, sample: dict[str, Any]) -> dict[str, Any] | None:
    serializers = sample.get("serializers")
    expected = sample.get("expected_attributes")
    if not serializers or expected is None:
        return None
    entry: dict[str, Any] = {"source": source}
    for name in SERIALIZERS:
        entry[name] = [variant["bytes_hex"] for variant in serializers.get(name, [])]
    entry["expected"] = expected
    return entry


def convert(suite: Path) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for profile, path in source_files(suite):
        doc = json.loads(path.read_text(encoding="utf-8"))
        name = doc["wamp_message_type"].lower()
        for index, sample in enumerate(doc["samples"]):
            entry = convert_sample(f"{profile}/{path.name}#{index}", sample)
            if entry is not None:
                out[name].append(entry)
    return dict(out)


def main(argv: list[str]) -> int:
    suite = Path(argv[1]) if len(argv) > 1 else DEFAULT_SUITE
    if not (suite / "singlemessage").is_dir():
        print(f"not a WAMP testsuite directory: {suite}", file=sys.stderr)
        return 2
    for old in HERE.glob("*.json"):
        old.unlink()
    for name, entries in sorted(convert(suite).items()):
        target = HERE / f"{name}.json"
        target.write_text(json.dumps(entries, indent=2) + "\n", encoding="utf-8")
        print(f"{target.name}: {len(entries)} sample(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
