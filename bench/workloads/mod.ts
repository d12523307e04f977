/**
 * The benchmark workloads, by name, in report order.
 *
 * @module
 */
import { aligned, duplicate } from "./aligned.ts";
import { edited } from "./edited.ts";
import { mixed } from "./mixed.ts";
import { realfiles } from "./realfiles.ts";
import { small } from "./small.ts";
import type { Workload, WorkloadOptions } from "./types.ts";
import { unaligned } from "./unaligned.ts";

export { DEFAULT_CORPUS, type Op, type Workload, type WorkloadOptions } from "./types.ts";

/** Workload factories in report order. */
export const WORKLOADS: Record<string, (opts: WorkloadOptions) => Workload> = {
  aligned,
  unaligned,
  duplicate,
  small,
  mixed,
  edited,
  realfiles,
};

/** Workload names in report order. */
export const WORKLOAD_NAMES: readonly string[] = Object.keys(WORKLOADS);
