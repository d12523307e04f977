/**
 * The states a mirror reports: `mirror.state` in a source's
 * `/v1/admin/stats` and the `state` label of `refsync_mirror_state` in
 * `/metrics` (one series per state, so every state must be listed here), and
 * the outage policies (`--sync-policy`). The link's own states
 * (`mirror.link`: connecting, connected, down, refused, fenced) are the
 * forwarder's (`src/edge-source/mirror/log-forwarder.ts`).
 *
 * @module
 */

/** Every mirror state, one line each: a new state is a new line here. */
export const MIRROR_STATES = [
  "in-sync", // linked, no catch-up, the destination holds every record and our CP or the one before
  "out-of-sync", // anything else but fenced: down, refused, log or CPs behind (`mirror.lastError` says)
  "initializing", // a baseline runs or is pending: the destination holds no complete image
  "resyncing", // a resync runs or is pending: the destination's image is incomplete until it commits
  "fenced", // the destination was promoted over this source: final
  "local", // a source without a destination
  "destination", // a destination: it mirrors its source and has no link of its own
] as const;

/**
 * One of {@link MIRROR_STATES}.
 *
 * @example
 * ```ts
 * const state: MirrorState = "in-sync";
 * ```
 */
export type MirrorState = typeof MIRROR_STATES[number];

/**
 * What a write does when the destination does not confirm it within
 * `--sync-timeout`: `strict` refuses it (503, RPO 0), `available` acknowledges
 * it on local durability and the mirror goes out of sync.
 */
export const SYNC_POLICIES = ["strict", "available"] as const;

/**
 * One of {@link SYNC_POLICIES}.
 *
 * @example
 * ```ts
 * const policy: SyncPolicy = "available";
 * ```
 */
export type SyncPolicy = typeof SYNC_POLICIES[number];
