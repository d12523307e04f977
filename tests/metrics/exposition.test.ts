/**
 * The text exposition format, exactly: HELP/TYPE lines, label sets and their
 * escaping, cumulative histogram buckets with +Inf, _sum and _count, and the
 * values read at scrape time.
 */
import assert from "node:assert/strict";
import {
  escapeHelp,
  escapeLabelValue,
  formatValue,
  renderText,
} from "../../src/metrics/exposition.ts";
import { Registry } from "../../src/metrics/registry.ts";

Deno.test("counters, gauges and histograms are written in the 0.0.4 text format", () => {
  const r = new Registry();
  const requests = r.counter("app_requests_total", "Requests answered.", ["op", "status"]);
  requests.labels("get", 200).inc();
  requests.labels("get", 200).inc(2);
  requests.labels("put", 503).inc();
  r.gauge("app_temperature", "Degrees.\nLine two, a \\ too.").labels().set(-1.5);
  const latency = r.histogram("app_latency_seconds", "Time to answer.", [0.1, 1], ["face"]);
  latency.labels("s3").observe(0.05);
  latency.labels("s3").observe(0.1); // a bound is in its own bucket (le = less or equal)
  latency.labels("s3").observe(0.5);
  latency.labels("s3").observe(7);
  r.counter("app_idle_total", "Never bumped: 0, not absent.");
  assert.equal(
    renderText(r),
    [
      "# HELP app_requests_total Requests answered.",
      "# TYPE app_requests_total counter",
      'app_requests_total{op="get",status="200"} 3',
      'app_requests_total{op="put",status="503"} 1',
      "# HELP app_temperature Degrees.\\nLine two, a \\\\ too.",
      "# TYPE app_temperature gauge",
      "app_temperature -1.5",
      "# HELP app_latency_seconds Time to answer.",
      "# TYPE app_latency_seconds histogram",
      'app_latency_seconds_bucket{face="s3",le="0.1"} 2',
      'app_latency_seconds_bucket{face="s3",le="1"} 3',
      'app_latency_seconds_bucket{face="s3",le="+Inf"} 4',
      'app_latency_seconds_sum{face="s3"} 7.65',
      'app_latency_seconds_count{face="s3"} 4',
      "# HELP app_idle_total Never bumped: 0, not absent.",
      "# TYPE app_idle_total counter",
      "app_idle_total 0",
      "",
    ].join("\n"),
  );
});

Deno.test("label values escape backslash, double quote and line feed", () => {
  const r = new Registry();
  r.gauge("g", "A gauge.", ["path"]).labels('C:\\dir "x"\nnext').set(1);
  assert.equal(
    renderText(r),
    '# HELP g A gauge.\n# TYPE g gauge\ng{path="C:\\\\dir \\"x\\"\\nnext"} 1\n',
  );
  assert.equal(escapeLabelValue("plain ünïcode"), "plain ünïcode");
  assert.equal(escapeHelp('quotes " stay'), 'quotes " stay');
});

Deno.test("special values are +Inf, -Inf and NaN", () => {
  assert.equal(formatValue(Infinity), "+Inf");
  assert.equal(formatValue(-Infinity), "-Inf");
  assert.equal(formatValue(NaN), "NaN");
  assert.equal(formatValue(1e-7), "1e-7");
  assert.equal(formatValue(123456789), "123456789");
});

Deno.test("collectors set values at every scrape", () => {
  const r = new Registry();
  const bytes = r.counter("sent_bytes_total", "Bytes sent.", ["kind"]);
  const source = { log: 10 };
  r.onCollect(() => bytes.labels("log").set(source.log));
  assert.match(renderText(r), /^sent_bytes_total\{kind="log"\} 10$/m);
  source.log = 4096;
  assert.match(renderText(r), /^sent_bytes_total\{kind="log"\} 4096$/m);
});

Deno.test("bad names, repeated families, wrong label counts and negative increments are refused", () => {
  const r = new Registry();
  assert.throws(() => r.counter("1abc", "x"), /invalid metric name/);
  assert.throws(() => r.counter("ok_total", "x", ["bad-label"]), /invalid label name/);
  assert.throws(() => r.counter("ok_total", "x", ["__reserved"]), /invalid label name/);
  assert.throws(() => r.histogram("h", "x", [1], ["le"]), /'le' is reserved/);
  assert.throws(() => r.histogram("h", "x", [1, 1]), /ascending/);
  const c = r.counter("c_total", "x", ["a"]);
  assert.throws(() => r.counter("c_total", "x"), /registered twice/);
  assert.throws(() => c.labels(), /takes 1 label values, got 0/);
  assert.throws(() => c.labels("v").inc(-1), /only goes up/);
});

Deno.test("a series is found again without a new child (the same object)", () => {
  const r = new Registry();
  const c = r.counter("c_total", "x", ["face", "op", "status"]);
  assert.equal(c.labels("native", "put", 201), c.labels("native", "put", 201));
  assert.notEqual(c.labels("native", "put", 201), c.labels("native", "put", 200));
  assert.equal(c.series.length, 2);
});
