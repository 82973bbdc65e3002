"""Parses a /metrics page with prometheus_client's OpenMetrics parser and with its classic
Prometheus text parser (both must accept it), and writes the OpenMetrics samples as JSON
lines: {"name", "labels", "value"}.
Usage: parse_metrics.py PAGE OUT"""
import json
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics
from prometheus_client.parser import text_string_to_metric_families as classic

page_path, out_path = sys.argv[1], sys.argv[2]
with open(page_path, encoding="utf-8") as page:
    text = page.read()
if not text.endswith("# EOF\n"):
    sys.exit("the page does not end with # EOF")
families = list(openmetrics(text))
list(classic(text))
names = [family.name for family in families]
if len(names) != len(set(names)):
    sys.exit(f"a metric family appears twice: {sorted(names)}")
with open(out_path, "w", encoding="utf-8") as out:
    for family in families:
        for sample in family.samples:
            out.write(json.dumps({"name": sample.name, "labels": sample.labels,
                                  "value": sample.value}) + "\n")
print(f"ok: {len(families)} families")
