/**
 * The catalog: an ordered, copy-on-write B+tree from byte keys to byte values
 * in 4 KiB metadata blocks. The storage engine keeps its object records in it.
 *
 * @example
 * ```ts
 * import { Catalog } from "./mod.ts";
 * import type { Volume } from "../volume/volume.ts";
 * declare const volume: Volume;
 * const enc = new TextEncoder();
 * const catalog = new Catalog(volume, null);
 * catalog.commit([{ key: enc.encode("a"), value: enc.encode("record") }], volume.beginCp());
 * catalog.list({ prefix: enc.encode("a"), limit: 10 });
 * ```
 *
 * @module
 */

export { Catalog, type CatalogOptions, type ListOptions, type ListResult } from "./catalog.ts";
export { type CatalogChange } from "./commit.ts";
export { CatalogNodeError, MAX_KEY_BYTES, MAX_VALUE_BYTES } from "./node.ts";
// The volume types this API speaks, for one-stop imports.
export type { BlockPtr, BlockReader, CpWriter } from "../volume/types.ts";
