/**
 * Metric families for the Prometheus text format: counters, gauges and
 * histograms, each with fixed label names, kept in a {@link Registry} that
 * {@link renderText} writes out. No HTTP, no storage: any component may hold
 * a family and bump it.
 *
 * Hot path: a child (one set of label values) is found through one map per
 * label, so a bump of an existing series allocates nothing; histograms have
 * fixed buckets.
 *
 * @example
 * ```ts
 * const registry = new Registry();
 * const requests = registry.counter("app_requests_total", "Requests served.", ["op"]);
 * requests.labels("get").inc();
 * const latency = registry.histogram("app_latency_seconds", "Time to answer.", [0.01, 0.1, 1]);
 * latency.labels().observe(0.05);
 * ```
 *
 * @module
 */

/** A label value: numbers (an HTTP status) are written in decimal. */
export type LabelValue = string | number;

/** The metric types of the text format that this registry makes. */
export type MetricType = "counter" | "gauge" | "histogram";

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** One series of a family: its label values (as written) and its value holder. */
export interface Series<C> {
  readonly values: readonly string[];
  readonly child: C;
}

/** A family: name, help, type, label names, and a child per set of label values. */
export abstract class Family<C> {
  readonly name: string;
  readonly help: string;
  abstract readonly type: MetricType;
  readonly labelNames: readonly string[];
  /** Nested maps, one level per label, down to the child. */
  #tree = new Map<LabelValue, unknown>();
  #series: Array<Series<C>> = [];

  constructor(name: string, help: string, labelNames: readonly string[]) {
    if (!METRIC_NAME.test(name)) throw new Error(`invalid metric name '${name}'`);
    for (const l of labelNames) {
      if (!LABEL_NAME.test(l) || l.startsWith("__")) throw new Error(`invalid label name '${l}'`);
    }
    if (new Set(labelNames).size !== labelNames.length) {
      throw new Error(`metric ${name}: a label name is repeated`);
    }
    this.name = name;
    this.help = help;
    this.labelNames = labelNames;
  }

  /** The child of these label values (one per label name, in order), created at first use. */
  labels(...values: LabelValue[]): C {
    const n = this.labelNames.length;
    if (values.length !== n) {
      throw new Error(`metric ${this.name} takes ${n} label values, got ${values.length}`);
    }
    if (n === 0) return this.#leaf(this.#tree, "", values);
    let node = this.#tree;
    for (let i = 0; i < n - 1; i++) {
      let next = node.get(values[i]) as Map<LabelValue, unknown> | undefined;
      if (next === undefined) {
        next = new Map();
        node.set(values[i], next);
      }
      node = next;
    }
    return this.#leaf(node, values[n - 1], values);
  }

  #leaf(node: Map<LabelValue, unknown>, last: LabelValue, values: LabelValue[]): C {
    let child = node.get(last) as C | undefined;
    if (child === undefined) {
      child = this.create();
      node.set(last, child);
      this.#series.push({ values: values.map(String), child });
    }
    return child;
  }

  /** Every series, in the order they were first used. */
  get series(): ReadonlyArray<Series<C>> {
    return this.#series;
  }

  protected abstract create(): C;
}

/** A counter's series: only goes up. */
export class CounterChild {
  value = 0;

  /** Adds `n` (default 1); a negative or NaN `n` is a bug. */
  inc(n = 1): void {
    if (!(n >= 0)) throw new RangeError(`a counter only goes up (got ${n})`);
    this.value += n;
  }

  /**
   * Sets the value from a monotonic source read at scrape time (a byte
   * counter kept elsewhere); never lower it.
   */
  set(value: number): void {
    this.value = value;
  }
}

/** A gauge's series: any value. */
export class GaugeChild {
  value = 0;

  set(value: number): void {
    this.value = value;
  }

  inc(n = 1): void {
    this.value += n;
  }
}

/** A histogram's series: a count per bucket (not cumulative here), the sum and the count. */
export class HistogramChild {
  readonly bounds: readonly number[];
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(bounds: readonly number[]) {
    this.bounds = bounds;
    this.counts = new Float64Array(bounds.length);
  }

  /** Counts `value` in the first bucket whose upper bound is at least it (else only in +Inf). */
  observe(value: number): void {
    const b = this.bounds;
    for (let i = 0; i < b.length; i++) {
      if (value <= b[i]) {
        this.counts[i]++;
        break;
      }
    }
    this.sum += value;
    this.count++;
  }
}

/** A counter family. */
export class Counter extends Family<CounterChild> {
  readonly type = "counter";
  protected create(): CounterChild {
    return new CounterChild();
  }
}

/** A gauge family. */
export class Gauge extends Family<GaugeChild> {
  readonly type = "gauge";
  protected create(): GaugeChild {
    return new GaugeChild();
  }
}

/** A histogram family with fixed bucket upper bounds (ascending; +Inf is implicit). */
export class Histogram extends Family<HistogramChild> {
  readonly type = "histogram";
  readonly bounds: readonly number[];

  constructor(
    name: string,
    help: string,
    bounds: readonly number[],
    labelNames: readonly string[],
  ) {
    super(name, help, labelNames);
    if (labelNames.includes("le")) throw new Error(`histogram ${name}: 'le' is reserved`);
    for (let i = 0; i < bounds.length; i++) {
      if (!Number.isFinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1])) {
        throw new Error(`histogram ${name}: bucket bounds must be finite and ascending`);
      }
    }
    this.bounds = [...bounds];
  }

  protected create(): HistogramChild {
    return new HistogramChild(this.bounds);
  }
}

/** Any family. */
export type AnyFamily = Counter | Gauge | Histogram;

/** The families of one appliance, written out in the order they were made. */
export class Registry {
  #families: AnyFamily[] = [];
  #collectors: Array<() => void> = [];

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.#add(new Counter(name, help, labelNames));
  }

  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return this.#add(new Gauge(name, help, labelNames));
  }

  histogram(
    name: string,
    help: string,
    bounds: readonly number[],
    labelNames: readonly string[] = [],
  ): Histogram {
    return this.#add(new Histogram(name, help, bounds, labelNames));
  }

  /** Runs `collect` before every scrape: it sets the values read from elsewhere. */
  onCollect(collect: () => void): void {
    this.#collectors.push(collect);
  }

  /** Runs the collectors, then gives every family. */
  collect(): readonly AnyFamily[] {
    for (const c of this.#collectors) c();
    return this.#families;
  }

  #add<F extends AnyFamily>(family: F): F {
    if (this.#families.some((f) => f.name === family.name)) {
      throw new Error(`metric ${family.name} is registered twice`);
    }
    // A family without labels has its one series from the start (it reads 0, not absent).
    if (family.labelNames.length === 0) family.labels();
    this.#families.push(family);
    return family;
  }
}
