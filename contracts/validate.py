#!/usr/bin/env python3
"""Validates the partner contracts with standard validators, not wangban's parsers.

    python3 contracts/validate.py                  # the samples against their schemas
    python3 contracts/validate.py --simulator DIR  # also what the simulator served

Every sample validates against its folder's schema, except the edge samples
(`*edge*`), which must be refused. With --simulator, every file under
DIR/<folder>/ (as the simulator test writes them) must validate. Needs the
`jsonschema` and `lxml` packages. Prints one line per file and a closing
'N passed, N failed' line; exits 1 on any failure.
"""

import argparse
import csv
import io
import json
import pathlib
import re
import sys

import jsonschema
from lxml import etree

ROOT = pathlib.Path(__file__).resolve().parent

JSON_FEEDS = {
    "registry-cases": "schema.json",
    "registry-qc-findings": "schema.json",
    "registry-evaluations": "schema.json",
    "housing-listing": "schema.json",
    "bank": "schema.json",
}
XML_FEEDS = {
    "provident-fund": "schema.xsd",
    "court-platform-requests": "schema.xsd",
    "court-platform-feedback": "schema.xsd",
    "court-push": "court-api.xsd",
}


def json_errors(folder, payload):
    schema = json.loads((ROOT / folder / JSON_FEEDS[folder]).read_text("utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(payload)]


def xml_errors(folder, raw):
    schema = etree.XMLSchema(etree.parse(str(ROOT / folder / XML_FEEDS[folder])))
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    try:
        document = etree.fromstring(raw, parser)
    except etree.XMLSyntaxError as e:
        return [f"not well-formed: {e}"]
    if schema.validate(document):
        return []
    return [f"line {e.line}: {e.message}" for e in schema.error_log]


def csv_errors(raw):
    spec = json.loads((ROOT / "housing-file" / "spec.json").read_text("utf-8"))
    try:
        text = raw.decode(spec["encoding"].lower())
    except UnicodeDecodeError as e:
        return [f"not {spec['encoding']}: {e}"]
    errors = []
    lines = text.split("\r\n")
    if lines and lines[-1] == "":
        lines.pop()
    if any("\n" in line for line in lines):
        errors.append("line ends are not CRLF")
    rows = list(csv.reader(io.StringIO("\n".join(lines))))
    if not rows or rows[0] != spec["header"]:
        return errors + ["the header is not the agreed one"]
    columns = spec["columns"]
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(columns):
            errors.append(f"line {number}: {len(row)} fields, expected {len(columns)}")
            continue
        for column, value in zip(columns, row):
            if column["required"] and not value.strip():
                errors.append(f"line {number}: {column['name']} is empty")
            elif "pattern" in column and value and not re.fullmatch(column["pattern"], value):
                errors.append(f"line {number}: {column['name']} {value!r} does not match {column['pattern']}")
            elif column["type"] == "time" and value and not re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", value):
                errors.append(f"line {number}: {column['name']} {value!r} is not yyyy-MM-dd HH:mm:ss")
            elif column["type"] == "code" and value not in column["values"]:
                errors.append(f"line {number}: {column['name']} {value!r} is not one of {list(column['values'])}")
            elif column["type"] == "unit_no" and value and len(value) != 28:
                errors.append(f"line {number}: {column['name']} {value!r} is not 28 characters")
    return errors


def errors_of(folder, path):
    raw = path.read_bytes()
    if folder == "housing-file":
        return csv_errors(raw)
    if folder in XML_FEEDS:
        return xml_errors(folder, raw)
    return json_errors(folder, json.loads(raw.decode("utf-8")))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simulator", type=pathlib.Path, help="a folder of simulator output, one subfolder per feed")
    args = parser.parse_args()
    passed = failed = 0

    def report(ok, what, detail=""):
        nonlocal passed, failed
        if ok:
            passed += 1
            print(f"ok    {what}")
        else:
            failed += 1
            print(f"FAIL  {what}{': ' + detail if detail else ''}")

    for folder in sorted(list(JSON_FEEDS) + list(XML_FEEDS) + ["housing-file"]):
        for path in sorted((ROOT / folder / "samples").iterdir()):
            if path.name.endswith(".expected.json"):
                continue
            errors = errors_of(folder, path)
            relative = path.relative_to(ROOT)
            if "edge" in path.name:
                report(bool(errors), f"{relative} is refused", "it validates, but it is an edge sample")
            else:
                report(not errors, f"{relative} validates", "; ".join(errors[:5]))
    if args.simulator:
        seen = 0
        for folder_path in sorted(p for p in args.simulator.iterdir() if p.is_dir()):
            for path in sorted(folder_path.iterdir()):
                seen += 1
                errors = errors_of(folder_path.name, path)
                report(not errors, f"simulator {folder_path.name}/{path.name} validates", "; ".join(errors[:5]))
        report(seen > 0, "the simulator wrote something to validate")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
