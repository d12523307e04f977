/**
 * The states a mirror reports: `mirror.state` in a source's
 * `/v1/admin/stats` and the `state` label of `refsync_mirror_state` in
 * `/metrics` (one series per state, so every state must be listed here).
 *
 * @module
 */

/** Every mirror state, one line each: a new state is a new line here. */
export const MIRROR_STATES = [
  "connecting", // a source whose destination has answered no handshake yet
  "connected",
  "down", // the destination is unreachable or answers 5xx
  "refused", // the destination answered the handshake with no
  "fenced", // the destination was promoted over this source: final
  "local", // a source without a destination
  "destination", // a destination: it mirrors its source and has no link of its own
] as const;

/**
 * One of {@link MIRROR_STATES}.
 *
 * @example
 * ```ts
 * const state: MirrorState = "connected";
 * ```
 */
export type MirrorState = typeof MIRROR_STATES[number];
