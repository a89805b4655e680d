"""The gates of a load run as JUnit XML, for CI."""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree as ET

from redis_harness.report.gates import Gate


def junit(report: dict[str, Any], gates: list[Gate]) -> str:
    suite = ET.Element(
        "testsuite",
        name=f"load-gates.{report['profile']}.{report['scenario']}",
        tests=str(len(gates)),
        failures=str(sum(not g.passed and g.judged for g in gates)),
        skipped=str(sum(not g.judged for g in gates)),
        time=str(report["duration_s"]),
    )
    for gate in gates:
        case = ET.SubElement(suite, "testcase", classname=f"gates.{report['scenario']}", name=gate.name)
        if not gate.judged:
            ET.SubElement(case, "skipped", message=gate.detail)
        elif not gate.passed:
            failure = ET.SubElement(case, "failure", message=f"{gate.name}: {gate.value} vs threshold {gate.threshold}")
            failure.text = gate.detail
    return ET.tostring(suite, encoding="unicode", xml_declaration=True)
