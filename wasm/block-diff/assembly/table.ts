// Block index role: open-addressing hash table, digest (32 bytes) -> location (i64).
//
// Linear probing with backward-shift deletion (no tombstones, so lookups never wade through
// dead slots after heavy churn). Entry = 40 bytes: [value i64][key 32 bytes]; value -1 marks
// an empty slot (locations are >= 0). The value comes first so one 16-byte read at the slot
// sees both the empty marker and the first key bytes.
//
// Memory: [batch keys][batch values (f64)][table]. Growth doubles the slot count: the new
// table is built right after the old one, then moved down to the fixed table base.

import { DYN, ensureMemory, KEY } from "./layout";

const ENTRY: usize = 40;
const EMPTY: i64 = -1;
const MIN_SLOTS: u32 = 16;
const MAX_SLOTS: u32 = 1 << 26; // 2^26 x 40 B x 1.5 (during growth) stays under 4 GiB

let batchCap: u32 = 0;
let batchKeys: usize = 0;
let batchVals: usize = 0;
let table: usize = 0;
let slots: u32 = 0;
let shift: u64 = 0; // 64 - log2(slots): the home slot is the top bits of the hash
let count: u32 = 0;
// Secret per-table seeds: the key is content-derived, so a writer could try to craft
// digests that share home slots; mixing two key words with unknown seeds defeats that.
let seed0: u64 = 0;
let seed1: u64 = 0;

function home(key: usize): u32 {
  const a = (load<u64>(key) ^ seed0) * 0x9e3779b97f4a7c15;
  const b = (load<u64>(key, 8) ^ seed1) * 0xc2b2ae3d27d4eb4f;
  return <u32> ((a ^ b) >> shift);
}

function keyEq(a: usize, b: usize): bool {
  const x = v128.xor(v128.load(a), v128.load(b));
  const y = v128.xor(v128.load(a, 16), v128.load(b, 16));
  return !v128.any_true(v128.or(x, y));
}

function log2(x: u32): u32 {
  return 31 - clz(x);
}

function setSlots(n: u32): void {
  slots = n;
  shift = 64 - <u64> log2(n);
}

/** Lays out the index regions; returns 0 on success, 1 when memory cannot grow. */
export function indexSetup(initial: u32, batch: u32, s0: u32, s1: u32, s2: u32, s3: u32): i32 {
  if (slots != 0 || batch == 0) unreachable(); // one setup per instance
  // Smallest power of two that keeps `initial` entries under the 3/4 load limit.
  let n = MIN_SLOTS;
  while (n < MAX_SLOTS && <u64> n * 3 < <u64> initial * 4) n <<= 1;
  batchCap = batch;
  batchKeys = DYN;
  batchVals = batchKeys + <usize> batch * 32;
  table = (batchVals + <usize> batch * 8 + 63) & ~63;
  if (!ensureMemory(table + <usize> n * ENTRY)) return 1;
  seed0 = (<u64> s0 << 32) | s1;
  seed1 = (<u64> s2 << 32) | s3;
  setSlots(n);
  memory.fill(table, 0xff, <usize> n * ENTRY);
  count = 0;
  return 0;
}

export function indexBatchKeys(): usize {
  return batchKeys;
}

export function indexBatchValues(): usize {
  return batchVals;
}

export function indexKey(): usize {
  return KEY;
}

export function indexSize(): u32 {
  return count;
}

export function indexSlots(): u32 {
  return slots;
}

/** Doubles the table. Returns false (table unchanged) when memory cannot grow. */
function grow(): bool {
  if (slots >= MAX_SLOTS) return false;
  const oldSlots = slots;
  const fresh = table + <usize> oldSlots * ENTRY;
  const n = oldSlots << 1;
  if (!ensureMemory(fresh + <usize> n * ENTRY)) return false;
  memory.fill(fresh, 0xff, <usize> n * ENTRY);
  setSlots(n);
  const mask = n - 1;
  for (let i: u32 = 0; i < oldSlots; i++) {
    const e = table + <usize> i * ENTRY;
    if (load<i64>(e) == EMPTY) continue;
    let j = home(e + 8);
    while (load<i64>(fresh + <usize> j * ENTRY) != EMPTY) j = (j + 1) & mask;
    memory.copy(fresh + <usize> j * ENTRY, e, ENTRY);
  }
  memory.copy(table, fresh, <usize> n * ENTRY); // overlapping move down: memmove semantics
  return true;
}

/** Inserts or replaces; returns false when the table is full and memory cannot grow. */
function insert(key: usize, value: i64): bool {
  if ((<u64> count + 1) * 4 > <u64> slots * 3 && !grow()) return false;
  const mask = slots - 1;
  let i = home(key);
  while (true) {
    const e = table + <usize> i * ENTRY;
    if (load<i64>(e) == EMPTY) {
      memory.copy(e + 8, key, 32);
      store<i64>(e, value);
      count++;
      return true;
    }
    if (keyEq(e + 8, key)) {
      store<i64>(e, value);
      return true;
    }
    i = (i + 1) & mask;
  }
  return false; // unreachable: the load limit guarantees an empty slot
}

function lookup(key: usize): i64 {
  const mask = slots - 1;
  let i = home(key);
  while (true) {
    const e = table + <usize> i * ENTRY;
    const v = load<i64>(e);
    if (v == EMPTY) return -1;
    if (keyEq(e + 8, key)) return v;
    i = (i + 1) & mask;
  }
  return -1;
}

function remove(key: usize): bool {
  const mask = slots - 1;
  let i = home(key);
  while (true) {
    const e = table + <usize> i * ENTRY;
    if (load<i64>(e) == EMPTY) return false;
    if (keyEq(e + 8, key)) break;
    i = (i + 1) & mask;
  }
  // Backward shift: pull later members of the cluster into the hole unless their home lies
  // cyclically in (hole, j], where moving them before their home would hide them.
  let j = i;
  while (true) {
    j = (j + 1) & mask;
    const ej = table + <usize> j * ENTRY;
    if (load<i64>(ej) == EMPTY) break;
    const h = home(ej + 8);
    const stays = i <= j ? (h > i && h <= j) : (h > i || h <= j);
    if (!stays) {
      memory.copy(table + <usize> i * ENTRY, ej, ENTRY);
      i = j;
    }
  }
  store<i64>(table + <usize> i * ENTRY, EMPTY);
  count--;
  return true;
}

/** Single insert of the key at KEY. 0 = ok, 1 = out of memory. */
export function indexInsert(location: f64): i32 {
  return insert(KEY, <i64> location) ? 0 : 1;
}

/** Location of the key at KEY, -1 when absent. */
export function indexLookup(): f64 {
  return <f64> lookup(KEY);
}

export function indexRemove(): bool {
  return remove(KEY);
}

/** Inserts the n keys / f64 locations of the batch regions. Returns how many were inserted
 * (< n only when memory ran out). */
export function indexInsertBatch(n: u32): u32 {
  if (n > batchCap) unreachable();
  for (let i: u32 = 0; i < n; i++) {
    const v = <i64> load<f64>(batchVals + <usize> i * 8);
    if (!insert(batchKeys + <usize> i * 32, v)) return i;
  }
  return n;
}

/** Looks up the n batch keys; writes each location (or -1) over the batch values. */
export function indexLookupBatch(n: u32): void {
  if (n > batchCap) unreachable();
  for (let i: u32 = 0; i < n; i++) {
    store<f64>(batchVals + <usize> i * 8, <f64> lookup(batchKeys + <usize> i * 32));
  }
}

/** Removes the n batch keys; returns how many were present. */
export function indexRemoveBatch(n: u32): u32 {
  if (n > batchCap) unreachable();
  let removed: u32 = 0;
  for (let i: u32 = 0; i < n; i++) {
    if (remove(batchKeys + <usize> i * 32)) removed++;
  }
  return removed;
}

export function indexClear(): void {
  memory.fill(table, 0xff, <usize> slots * ENTRY);
  count = 0;
}
